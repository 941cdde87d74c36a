package deploycheck

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Resources are values offline too: an instance is an object of the
// attributes its configuration sets (evaluated as far as they can be), the
// attributes the configuration reads of it (unknown unless modelled
// below), and a few computed attributes whose value follows from the
// configuration by a rule Google documents:
//
//   - google_service_account: email ACCOUNT_ID@PROJECT.iam.gserviceaccount.com,
//     member serviceAccount:EMAIL, name and id projects/PROJECT/serviceAccounts/EMAIL;
//   - data.google_project: number (ProjectNumber, a stand-in);
//   - google_project_service_identity: the agent's email and member;
//   - google_api_gateway_gateway: default_hostname (a stand-in).
//
// So `google_service_account.sa["tasks"].member` is a known string, and a
// check can tell which account a binding names.

// commonAttrs are read through for-expressions the walk cannot attribute
// to a resource (f.service_config[0].uri): present, unknown.
var commonAttrs = []string{"id", "name", "self_link", "url", "uri", "urls", "number", "email", "member", "service_config", "build_config", "default_hostname", "address", "generation", "secret_id", "location", "project"}

// collectRefAttrs records, for each resource, which attributes the
// configuration reads of it.
func (m *Module) collectRefAttrs() {
	m.refAttrs = map[string]map[string]bool{}
	add := func(key, attr string) {
		if m.refAttrs[key] == nil {
			m.refAttrs[key] = map[string]bool{}
		}
		m.refAttrs[key][attr] = true
	}
	// resourceKey returns "TYPE.NAME" or "data.TYPE.NAME" and the rest of
	// the traversal.
	resourceKey := func(tr hcl.Traversal) (string, hcl.Traversal, bool) {
		root := tr.RootName()
		switch root {
		case "var", "local", "each", "count", "self", "path", "terraform", "module":
			return "", nil, false
		}
		n := 2
		if root == "data" {
			n = 3
		}
		if len(tr) < n {
			return "", nil, false
		}
		parts := []string{root}
		for _, step := range tr[1:n] {
			a, ok := step.(hcl.TraverseAttr)
			if !ok {
				return "", nil, false
			}
			parts = append(parts, a.Name)
		}
		return strings.Join(parts, "."), tr[n:], true
	}
	firstAttr := func(rest hcl.Traversal) (string, bool) {
		for _, step := range rest {
			switch s := step.(type) {
			case hcl.TraverseAttr:
				return s.Name, true
			case hcl.TraverseIndex, hcl.TraverseSplat:
				continue
			}
			return "", false
		}
		return "", false
	}
	visit := func(e hclsyntax.Expression) {
		_ = hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
			switch x := n.(type) {
			case *hclsyntax.ScopeTraversalExpr:
				if key, rest, ok := resourceKey(x.Traversal); ok {
					if a, ok := firstAttr(rest); ok {
						add(key, a)
					}
				}
			case *hclsyntax.RelativeTraversalExpr:
				// TYPE.NAME[expr].attr
				if ix, ok := x.Source.(*hclsyntax.IndexExpr); ok {
					if coll, ok := ix.Collection.(*hclsyntax.ScopeTraversalExpr); ok {
						if key, rest, ok := resourceKey(coll.Traversal); ok && len(rest) == 0 {
							if a, ok := firstAttr(x.Traversal); ok {
								add(key, a)
							}
						}
					}
				}
			}
			return nil
		})
	}
	for _, b := range m.bodies {
		walkExprs(b, visit)
	}
}

// evalResources gives every resource and data source whose instances can
// be expanded an object value per instance (see above).
func (m *Module) evalResources() {
	if m.refAttrs == nil {
		m.collectRefAttrs()
	}
	byType := map[string]map[string]cty.Value{}     // resources
	dataByType := map[string]map[string]cty.Value{} // data sources
	for _, kind := range []string{"resource", "data"} {
		for _, blk := range m.blocks(kind) {
			typ, name := blk.Labels[0], blk.Labels[1]
			insts, err := m.expand(blk)
			var v cty.Value
			switch {
			case err != nil:
				v = cty.DynamicVal
			case insts.keyed:
				objs := map[string]cty.Value{}
				for _, in := range insts.list {
					objs[in.Key.AsString()] = m.instanceValue(kind, in)
				}
				v = cty.ObjectVal(objs)
			case insts.counted:
				var objs []cty.Value
				for _, in := range insts.list {
					objs = append(objs, m.instanceValue(kind, in))
				}
				v = cty.TupleVal(objs)
				if len(objs) == 0 {
					v = cty.EmptyTupleVal
				}
			default:
				v = m.instanceValue(kind, insts.list[0])
			}
			target := byType
			if kind == "data" {
				target = dataByType
			}
			if target[typ] == nil {
				target[typ] = map[string]cty.Value{}
			}
			target[typ][name] = v
		}
	}
	for typ, names := range byType {
		m.ctx.Variables[typ] = cty.ObjectVal(names)
	}
	data := map[string]cty.Value{}
	for typ, names := range dataByType {
		data[typ] = cty.ObjectVal(names)
	}
	if len(data) > 0 {
		m.ctx.Variables["data"] = cty.ObjectVal(data)
	}
}

type expansion struct {
	list           []Instance
	keyed, counted bool
}

func (m *Module) expand(blk *hclsyntax.Block) (expansion, error) {
	typ, name := blk.Labels[0], blk.Labels[1]
	var out expansion
	insts, err := m.instancesOfBlock(typ, name, blk)
	if err != nil {
		return out, err
	}
	out.list = insts
	_, out.keyed = blk.Body.Attributes["for_each"]
	_, out.counted = blk.Body.Attributes["count"]
	if !out.keyed && !out.counted && len(insts) != 1 {
		return out, errNotExpandable
	}
	return out, nil
}

type deploycheckError string

func (e deploycheckError) Error() string { return string(e) }

const errNotExpandable = deploycheckError("not expandable")

// instanceValue is the object an instance stands for.
func (m *Module) instanceValue(kind string, in Instance) cty.Value {
	attrs := map[string]cty.Value{}
	for _, a := range commonAttrs {
		attrs[a] = cty.DynamicVal
	}
	key := in.Type + "." + in.Name
	if kind == "data" {
		key = "data." + key
	}
	for a := range m.refAttrs[key] {
		attrs[a] = cty.DynamicVal
	}
	for name, a := range in.Body.Attributes {
		switch name {
		case "for_each", "count", "depends_on", "provider":
			continue
		}
		v, diags := a.Expr.Value(in.Ctx)
		if diags.HasErrors() {
			v = cty.DynamicVal
		}
		attrs[name] = v
	}
	str := func(name string) (string, bool) { return KnownString(attrs[name]) }
	switch {
	case kind == "resource" && in.Type == "google_service_account":
		id, ok1 := str("account_id")
		project, ok2 := str("project")
		if ok1 && ok2 {
			email := id + "@" + project + ".iam.gserviceaccount.com"
			attrs["email"] = cty.StringVal(email)
			attrs["member"] = cty.StringVal("serviceAccount:" + email)
			attrs["name"] = cty.StringVal("projects/" + project + "/serviceAccounts/" + email)
			attrs["id"] = attrs["name"]
		}
	case kind == "data" && in.Type == "google_project":
		attrs["number"] = cty.StringVal(ProjectNumber)
	case kind == "resource" && in.Type == "google_api_gateway_gateway":
		// Really GATEWAY_ID-HASH.REGION_CODE.gateway.dev, known once the
		// gateway exists; a stand-in of the same shape.
		if id, ok := str("gateway_id"); ok {
			attrs["default_hostname"] = cty.StringVal(gatewayHostname(id))
		}
	case kind == "resource" && in.Type == "google_project_service_identity":
		// Google's service agents: service-PROJECT_NUMBER@gcp-sa-SERVICE.iam.gserviceaccount.com
		// (pubsub and eventarc, the two this configuration names).
		if svc, ok := str("service"); ok {
			email := "service-" + ProjectNumber + "@gcp-sa-" + strings.TrimSuffix(svc, ".googleapis.com") + ".iam.gserviceaccount.com"
			attrs["email"] = cty.StringVal(email)
			attrs["member"] = cty.StringVal("serviceAccount:" + email)
		}
	}
	return cty.ObjectVal(attrs)
}

// Output evaluates an output's value (unknown when it depends on what only
// the provider knows).
func (m *Module) Output(name string) cty.Value {
	for _, blk := range m.blocks("output") {
		if blk.Labels[0] != name {
			continue
		}
		a, ok := blk.Body.Attributes["value"]
		if !ok {
			return cty.NilVal
		}
		v, diags := a.Expr.Value(m.ctx)
		if diags.HasErrors() {
			return cty.DynamicVal
		}
		return v
	}
	return cty.NilVal
}

// gatewayHostname stands for an API Gateway's default_hostname.
func gatewayHostname(gatewayID string) string { return gatewayID + "-hash.region.gateway.dev" }
