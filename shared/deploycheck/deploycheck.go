// Package deploycheck reads the terraform/ configuration without providers
// (hcl/v2 and cty only) and checks it against what the code needs: an
// entry point per google_cloudfunctions2_function, the environment each
// function gets and who may invoke it (Check), how the functions call each
// other through Cloud Tasks, Eventarc, Cloud Scheduler and the gateway
// (CheckWiring), and what a first apply needs (CheckFirstApply).
//
// Terraform is evaluated as far as it can be offline: variables take their
// defaults (or the values given to LoadWith), locals are computed, for_each
// and dynamic blocks are expanded, resources stand for the attributes
// their configuration sets plus a few computed ones that follow from it by
// a documented rule (symbolic.go), and whatever else depends on a resource
// or data source is unknown. The names the checks need (entry points,
// environment variable names, invoker members, service account ids) must
// therefore be spelled in the configuration, not computed by the provider;
// a name a check cannot read is an error, never a pass.
package deploycheck

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// FunctionType is the resource type of a Cloud Run function (gen2).
const FunctionType = "google_cloudfunctions2_function"

// Module is a parsed terraform directory with its variables and locals.
type Module struct {
	Dir    string
	bodies []*hclsyntax.Body
	ctx    *hcl.EvalContext
	vars   map[string]cty.Value // overrides of variable defaults
	// refAttrs: the attributes the configuration reads of each resource
	// ("TYPE.NAME" or "data.TYPE.NAME").
	refAttrs map[string]map[string]bool
}

// ProjectNumber stands for the project number (data.google_project's
// number), which only a real project knows.
const ProjectNumber = "123456789012"

// Load parses every *.tf file of dir and evaluates variables and locals.
func Load(dir string) (*Module, error) { return LoadWith(dir, nil) }

// LoadWith is Load with values for variables (what a terraform.tfvars
// would give); the others take their defaults, and a variable without a
// default stays unknown.
func LoadWith(dir string, vars map[string]cty.Value) (*Module, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("deploycheck: no *.tf files in %s", dir)
	}
	sort.Strings(paths)
	p := hclparse.NewParser()
	m := &Module{Dir: dir, vars: vars}
	for _, path := range paths {
		f, diags := p.ParseHCLFile(path)
		if diags.HasErrors() {
			return nil, fmt.Errorf("deploycheck: %s", diags.Error())
		}
		m.bodies = append(m.bodies, f.Body.(*hclsyntax.Body))
	}
	m.ctx = m.baseContext()
	if err := m.evalVariables(); err != nil {
		return nil, err
	}
	// Locals and resource attributes refer to each other: settle them in
	// rounds (a resource's literal attributes, such as a service
	// account's account_id, make its email known offline).
	for round := 0; round < 3; round++ {
		m.evalLocals()
		m.evalResources()
	}
	m.evalLocals()
	return m, nil
}

// baseContext makes every root name the configuration uses resolvable:
// resources, data sources and iterators are unknown; functions it does not
// model return unknown.
func (m *Module) baseContext() *hcl.EvalContext {
	vars := map[string]cty.Value{
		"path": cty.ObjectVal(map[string]cty.Value{
			"module": cty.StringVal(m.Dir), "root": cty.StringVal(m.Dir), "cwd": cty.StringVal(m.Dir),
		}),
		"terraform": cty.ObjectVal(map[string]cty.Value{"workspace": cty.StringVal("default")}),
	}
	funcs := map[string]function.Function{
		"merge": stdlib.MergeFunc, "concat": stdlib.ConcatFunc, "flatten": stdlib.FlattenFunc,
		"keys": stdlib.KeysFunc, "values": stdlib.ValuesFunc, "lookup": stdlib.LookupFunc,
		"contains": stdlib.ContainsFunc, "length": stdlib.LengthFunc, "format": stdlib.FormatFunc,
		"join": stdlib.JoinFunc, "lower": stdlib.LowerFunc, "upper": stdlib.UpperFunc,
		"replace": stdlib.ReplaceFunc, "setproduct": stdlib.SetProductFunc, "coalesce": stdlib.CoalesceFunc,
		"distinct": stdlib.DistinctFunc, "zipmap": stdlib.ZipmapFunc, "split": stdlib.SplitFunc,
		"tostring": stdlib.MakeToFunc(cty.String), "tonumber": stdlib.MakeToFunc(cty.Number),
		"tobool": stdlib.MakeToFunc(cty.Bool), "toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
		"tolist": stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)), "tomap": stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
		"nonsensitive": identity, "sensitive": identity,
		"base64encode": base64encodeFunc, "templatefile": m.templatefileFunc(),
		"sha256": sha256Func, "filesha256": filesha256Func, "fileset": filesetFunc, "abspath": abspathFunc,
		"substr": stdlib.SubstrFunc, "regexall": stdlib.RegexAllFunc, "sort": stdlib.SortFunc,
		"startswith": startswithFunc, "coalescelist": stdlib.CoalesceListFunc,
		"min": stdlib.MinFunc, "max": stdlib.MaxFunc,
	}
	for _, b := range m.bodies {
		walkExprs(b, func(e hclsyntax.Expression) {
			for _, tr := range hclsyntax.Variables(e) {
				root := tr.RootName()
				switch root {
				case "var", "local", "each", "count", "self", "path", "terraform":
					continue
				}
				vars[root] = cty.DynamicVal
			}
			_ = hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
				if call, ok := n.(*hclsyntax.FunctionCallExpr); ok {
					if _, known := funcs[call.Name]; !known {
						funcs[call.Name] = unknownFunc
					}
				}
				return nil
			})
		})
	}
	return &hcl.EvalContext{Variables: vars, Functions: funcs}
}

var identity = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true, AllowDynamicType: true}},
	Type:   func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl:   func(args []cty.Value, _ cty.Type) (cty.Value, error) { return args[0], nil },
})

var unknownFunc = function.New(&function.Spec{
	VarParam: &function.Parameter{Name: "args", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true, AllowDynamicType: true},
	Type:     function.StaticReturnType(cty.DynamicPseudoType),
	Impl:     func([]cty.Value, cty.Type) (cty.Value, error) { return cty.DynamicVal, nil },
})

// walkExprs calls fn for every attribute expression of body, nested blocks
// included.
func walkExprs(body *hclsyntax.Body, fn func(hclsyntax.Expression)) {
	for _, a := range body.Attributes {
		fn(a.Expr)
	}
	for _, b := range body.Blocks {
		walkExprs(b.Body, fn)
	}
}

func (m *Module) blocks(typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.bodies {
		for _, blk := range b.Blocks {
			if blk.Type == typ {
				out = append(out, blk)
			}
		}
	}
	return out
}

func (m *Module) evalVariables() error {
	vals := map[string]cty.Value{}
	for _, blk := range m.blocks("variable") {
		name := blk.Labels[0]
		a, ok := blk.Body.Attributes["default"]
		if !ok {
			vals[name] = cty.DynamicVal // the operator supplies it
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return fmt.Errorf("deploycheck: variable %q default: %s", name, diags.Error())
		}
		vals[name] = v
	}
	for name, v := range m.vars {
		if _, ok := vals[name]; !ok {
			return fmt.Errorf("deploycheck: no variable %q", name)
		}
		vals[name] = v
	}
	m.ctx.Variables["var"] = cty.ObjectVal(vals)
	return nil
}

// evalLocals computes locals in as many passes as it takes for values that
// depend on each other to settle; what cannot be computed stays unknown.
func (m *Module) evalLocals() {
	exprs := map[string]hcl.Expression{}
	for _, blk := range m.blocks("locals") {
		for name, a := range blk.Body.Attributes {
			exprs[name] = a.Expr
		}
	}
	vals := map[string]cty.Value{}
	for name := range exprs {
		vals[name] = cty.DynamicVal
	}
	for pass := 0; pass <= len(exprs); pass++ {
		m.ctx.Variables["local"] = cty.ObjectVal(vals)
		next := map[string]cty.Value{}
		settled := true
		for name, e := range exprs {
			v, diags := e.Value(m.ctx)
			if diags.HasErrors() {
				v = cty.DynamicVal
			}
			next[name] = v
			settled = settled && v.RawEquals(vals[name])
		}
		vals = next
		if settled {
			break
		}
	}
	m.ctx.Variables["local"] = cty.ObjectVal(vals)
}

// Local returns the value of a local (unknown when it depends on a resource).
func (m *Module) Local(name string) cty.Value {
	l := m.ctx.Variables["local"]
	if l.Type().IsObjectType() && l.Type().HasAttribute(name) {
		return l.GetAttr(name)
	}
	return cty.NilVal
}

// Instance is one instance of a resource (one for_each key).
type Instance struct {
	Type, Name string
	Key        cty.Value // cty.NilVal without for_each or count
	Body       *hclsyntax.Body
	Ctx        *hcl.EvalContext
}

// Address is the instance's address, as terraform prints it.
func (i Instance) Address() string {
	a := i.Type + "." + i.Name
	switch {
	case i.Key == cty.NilVal:
	case i.Key.Type() == cty.String:
		a += fmt.Sprintf("[%q]", i.Key.AsString())
	default:
		a += fmt.Sprintf("[%s]", i.Key.AsBigFloat().String())
	}
	return a
}

// Instances expands every resource block of type typ.
func (m *Module) Instances(typ string) ([]Instance, error) { return m.instancesOf("resource", typ) }

// DataInstances expands every data block of type typ.
func (m *Module) DataInstances(typ string) ([]Instance, error) { return m.instancesOf("data", typ) }

func (m *Module) instancesOf(kind, typ string) ([]Instance, error) {
	var out []Instance
	for _, blk := range m.blocks(kind) {
		if blk.Labels[0] != typ {
			continue
		}
		insts, err := m.instancesOfBlock(typ, blk.Labels[1], blk)
		if err != nil {
			return nil, err
		}
		out = append(out, insts...)
	}
	return out, nil
}

// Block returns the resource block TYPE.NAME (nil when absent).
func (m *Module) Block(kind, typ, name string) *hclsyntax.Block {
	for _, blk := range m.blocks(kind) {
		if blk.Labels[0] == typ && blk.Labels[1] == name {
			return blk
		}
	}
	return nil
}

func (m *Module) instancesOfBlock(typ, name string, blk *hclsyntax.Block) ([]Instance, error) {
	var out []Instance
	addr := typ + "." + name
	if a, ok := blk.Body.Attributes["for_each"]; ok {
		fe, diags := a.Expr.Value(m.ctx)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: for_each: %s", addr, diags.Error())
		}
		if !fe.IsWhollyKnown() || fe.IsNull() {
			return nil, fmt.Errorf("%s: for_each is not known without a cloud project; key it by names spelled in the configuration", addr)
		}
		switch {
		case fe.Type().IsMapType() || fe.Type().IsObjectType():
			for it := fe.ElementIterator(); it.Next(); {
				k, v := it.Element()
				out = append(out, m.instance(typ, name, blk, k, v))
			}
		case fe.Type().IsSetType():
			for it := fe.ElementIterator(); it.Next(); {
				_, v := it.Element()
				out = append(out, m.instance(typ, name, blk, v, v))
			}
		default:
			return nil, fmt.Errorf("%s: for_each of type %s", addr, fe.Type().FriendlyName())
		}
		return out, nil
	}
	if a, ok := blk.Body.Attributes["count"]; ok {
		c, diags := a.Expr.Value(m.ctx)
		if diags.HasErrors() || !c.IsKnown() || c.IsNull() {
			return nil, fmt.Errorf("%s: count is not known", addr)
		}
		n, _ := c.AsBigFloat().Int64()
		for i := int64(0); i < n; i++ {
			ctx := m.ctx.NewChild()
			ctx.Variables = map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(i)})}
			out = append(out, Instance{Type: typ, Name: name, Key: cty.NumberIntVal(i), Body: blk.Body, Ctx: ctx})
		}
		return out, nil
	}
	return []Instance{{Type: typ, Name: name, Key: cty.NilVal, Body: blk.Body, Ctx: m.ctx}}, nil
}

func (m *Module) instance(typ, name string, blk *hclsyntax.Block, k, v cty.Value) Instance {
	ctx := m.ctx.NewChild()
	ctx.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
	return Instance{Type: typ, Name: name, Key: k, Body: blk.Body, Ctx: ctx}
}

// Block is one nested block of an instance, dynamic blocks expanded.
type Block struct {
	Body *hclsyntax.Body
	Ctx  *hcl.EvalContext
}

// Blocks returns the nested blocks of type typ in body, static and dynamic.
func Blocks(body *hclsyntax.Body, ctx *hcl.EvalContext, typ string) ([]Block, error) {
	var out []Block
	for _, b := range body.Blocks {
		switch {
		case b.Type == typ:
			out = append(out, Block{Body: b.Body, Ctx: ctx})
		case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == typ:
			iter := typ
			if a, ok := b.Body.Attributes["iterator"]; ok {
				iter = hcl.ExprAsKeyword(a.Expr)
			}
			a, ok := b.Body.Attributes["for_each"]
			if !ok {
				return nil, fmt.Errorf("dynamic %q without for_each", typ)
			}
			fe, diags := a.Expr.Value(ctx)
			if diags.HasErrors() {
				return nil, fmt.Errorf("dynamic %q: for_each: %s", typ, diags.Error())
			}
			if !fe.IsWhollyKnown() || fe.IsNull() {
				return nil, fmt.Errorf("dynamic %q: for_each is not known offline", typ)
			}
			var content *hclsyntax.Body
			for _, c := range b.Body.Blocks {
				if c.Type == "content" {
					content = c.Body
				}
			}
			if content == nil {
				return nil, fmt.Errorf("dynamic %q without content", typ)
			}
			for it := fe.ElementIterator(); it.Next(); {
				k, v := it.Element()
				child := ctx.NewChild()
				child.Variables = map[string]cty.Value{iter: cty.ObjectVal(map[string]cty.Value{"key": k, "value": v})}
				out = append(out, Block{Body: content, Ctx: child})
			}
		}
	}
	return out, nil
}

// Attr evaluates an attribute; ok is false when it is absent.
func Attr(body *hclsyntax.Body, ctx *hcl.EvalContext, name string) (v cty.Value, ok bool, err error) {
	a, ok := body.Attributes[name]
	if !ok {
		return cty.NilVal, false, nil
	}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, true, fmt.Errorf("%s: %s", name, diags.Error())
	}
	return v, true, nil
}

// Nested evaluates the attribute at path (blocks, then the attribute) of the
// single block found at each level.
func Nested(body *hclsyntax.Body, ctx *hcl.EvalContext, path ...string) (cty.Value, bool, error) {
	for _, blockType := range path[:len(path)-1] {
		bs, err := Blocks(body, ctx, blockType)
		if err != nil {
			return cty.NilVal, false, err
		}
		if len(bs) != 1 {
			return cty.NilVal, false, nil
		}
		body, ctx = bs[0].Body, bs[0].Ctx
	}
	return Attr(body, ctx, path[len(path)-1])
}

// KnownString returns v as a string when it is a known, non-null string.
func KnownString(v cty.Value) (string, bool) {
	if v == cty.NilVal || !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

// Refs lists the resources of type typ that attribute attr of body refers
// to, as "NAME|key" (typ.NAME["key"], or typ.NAME[expr] with expr evaluated
// in ctx) or "NAME|" (typ.NAME, a resource without for_each).
func Refs(body *hclsyntax.Body, ctx *hcl.EvalContext, attr, typ string) ([]string, error) {
	a, ok := body.Attributes[attr]
	if !ok {
		return nil, nil
	}
	var refs []string
	var errs []string
	_ = hclsyntax.VisitAll(a.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
		switch e := n.(type) {
		case *hclsyntax.ScopeTraversalExpr:
			tr := e.Traversal
			if tr.RootName() != typ || len(tr) < 2 {
				return nil
			}
			name := tr[1].(hcl.TraverseAttr).Name
			if len(tr) > 2 {
				if idx, ok := tr[2].(hcl.TraverseIndex); ok {
					if s, ok := KnownString(idx.Key); ok {
						refs = append(refs, name+"|"+s)
						return nil
					}
				}
			}
			refs = append(refs, name+"|")
		case *hclsyntax.IndexExpr:
			coll, ok := e.Collection.(*hclsyntax.ScopeTraversalExpr)
			if !ok || coll.Traversal.RootName() != typ || len(coll.Traversal) != 2 {
				return nil
			}
			k, diags := e.Key.Value(ctx)
			s, known := KnownString(k)
			if diags.HasErrors() || !known {
				errs = append(errs, fmt.Sprintf("%s: key of %s is not known offline", attr, typ))
				return nil
			}
			refs = append(refs, coll.Traversal[1].(hcl.TraverseAttr).Name+"|"+s)
		}
		return nil
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	// typ.NAME[key] also visits its collection typ.NAME: keep the keyed one.
	keyed := map[string]bool{}
	for _, r := range refs {
		if !strings.HasSuffix(r, "|") {
			keyed[strings.SplitN(r, "|", 2)[0]] = true
		}
	}
	var out []string
	for _, r := range refs {
		if strings.HasSuffix(r, "|") && keyed[strings.TrimSuffix(r, "|")] {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// DependsOn lists the references of body's depends_on as "TYPE.NAME"
// (instance keys dropped: Terraform orders by whole resources).
func DependsOn(body *hclsyntax.Body) []string {
	a, ok := body.Attributes["depends_on"]
	if !ok {
		return nil
	}
	var out []string
	for _, tr := range hclsyntax.Variables(a.Expr) {
		var parts []string
		for _, step := range tr {
			switch s := step.(type) {
			case hcl.TraverseRoot:
				parts = append(parts, s.Name)
			case hcl.TraverseAttr:
				parts = append(parts, s.Name)
			}
		}
		if len(parts) >= 2 {
			if parts[0] == "data" && len(parts) >= 3 {
				parts = parts[:3]
			} else {
				parts = parts[:2]
			}
			out = append(out, strings.Join(parts, "."))
		}
	}
	return out
}
