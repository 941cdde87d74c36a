package deploycheck

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Wiring is who calls the private functions and where the functions find
// each other: what Cloud Tasks, Eventarc and Cloud Scheduler are told, and
// the URLs in the environment.
type Wiring struct {
	// TaskHandler is the entry point Cloud Tasks calls, at the URL in
	// TaskURLEnv, with an OIDC token of the account in TaskAccountEnv.
	TaskHandler, TaskURLEnv, TaskAccountEnv string
	// Trigger: the Firestore trigger's destination and event filters.
	Trigger TriggerWant
	// Scheduled is the entry point Cloud Scheduler calls.
	Scheduled string
	// BaseURLEnv must be the module's one base URL (output BaseURLOutput).
	BaseURLEnv, BaseURLOutput string
	// ImageEnv, when a function sets it, must be the image of output
	// ImageOutput, which must live in a publicly readable Artifact
	// Registry repository that a build pushes it to.
	ImageEnv, ImageOutput string
	// GatewayEnv is "1" on the functions exactly when API Gateway calls
	// them: the gateway replaces the caller's Authorization header with
	// its own ID token, so the key must be read from
	// X-Forwarded-Authorization.
	GatewayEnv string
}

// TriggerWant is the Eventarc trigger the code expects.
type TriggerWant struct {
	EntryPoint, EventType, Document, ContentType string
}

// RunURL is a function's deterministic Cloud Run URL
// (https://NAME-PROJECT_NUMBER.REGION.run.app, Cloud Run's documented
// form), "" when its name or region is not known offline.
func RunURL(f *Function) string {
	if f.Name == "" || f.Location == "" {
		return ""
	}
	return "https://" + f.Name + "-" + ProjectNumber + "." + f.Location + ".run.app"
}

// firestoreEventarcLocation is where Eventarc serves a Firestore database's
// location (Google's "Create event-driven architectures with Eventarc":
// no multi-region; nam5 maps to us-central1, eur3 to europe-west4).
func firestoreEventarcLocation(loc string) string {
	switch loc {
	case "nam5":
		return "us-central1"
	case "eur3":
		return "europe-west4"
	}
	return loc
}

// CheckWiring checks each private function's invokers against the one
// service that calls it, the trigger, the scheduler job, and every URL the
// functions are given.
func CheckWiring(m *Module, fns []*Function, w Wiring) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	byEntry := map[string]*Function{}
	byURL := map[string]*Function{}
	byName := map[string]*Function{}
	for _, f := range fns {
		byEntry[f.EntryPoint] = f
		if u := RunURL(f); u != "" {
			byURL[u] = f
		}
		if f.Name != "" {
			byName[f.Name] = f
		}
	}
	entryOf := func(f *Function) string {
		if f == nil {
			return "no function"
		}
		return f.EntryPoint
	}
	// callers: entry point => member => who (for messages).
	callers := map[string]map[string]string{}
	addCaller := func(ep, member, who string) {
		if callers[ep] == nil {
			callers[ep] = map[string]string{}
		}
		callers[ep][member] = who
	}

	// Environment: the same value everywhere (config.Load is the same for
	// every function), URLs naming the right function.
	envValue := func(name string) (string, bool) {
		var val string
		found := false
		for _, f := range fns {
			v, ok := f.EnvValues[name]
			if !ok {
				continue
			}
			s, known := KnownString(v)
			if !known {
				fail("%s: %s is not known offline (spell it with names of the configuration)", f.Address, name)
				return "", false
			}
			if found && s != val {
				fail("%s: %s is %q, other functions get %q", f.Address, name, s, val)
				continue
			}
			val, found = s, true
		}
		return val, found
	}
	if u, ok := envValue(w.TaskURLEnv); ok {
		if f := byURL[u]; f == nil || f.EntryPoint != w.TaskHandler {
			fail("%s is %q, the URL of %s, not of %s", w.TaskURLEnv, u, entryOf(f), w.TaskHandler)
		}
	}
	if sa, ok := envValue(w.TaskAccountEnv); ok {
		addCaller(w.TaskHandler, "serviceAccount:"+sa, "Cloud Tasks ("+w.TaskAccountEnv+")")
	}
	// The one base URL is a gateway's or the load balancer's.
	fronts, err := frontDoors(m)
	if err != nil {
		return append(errs, err)
	}
	base, known := KnownString(m.Output(w.BaseURLOutput))
	switch {
	case !known:
		fail("output %s is not known offline", w.BaseURLOutput)
	case !fronts[base]:
		fail("output %s is %q, neither an API Gateway's URL nor the load balancer's https://DOMAIN: clients would need one URL per function", w.BaseURLOutput, base)
	}
	if u, ok := envValue(w.BaseURLEnv); ok && known && u != base {
		fail("%s is %q, not the base URL of the API (output %s: %q)", w.BaseURLEnv, u, w.BaseURLOutput, base)
	}
	for _, f := range fns {
		for name, v := range f.EnvValues {
			if s, ok := KnownString(v); ok && strings.Contains(s, ".run.app") && byURL[s] == nil {
				fail("%s: %s is %q, the URL of no function", f.Address, name, s)
			}
		}
	}

	// The Firestore trigger.
	dbLoc := map[string]string{} // database name => location
	dbs, err := m.Instances("google_firestore_database")
	if err != nil {
		return append(errs, err)
	}
	for _, in := range dbs {
		name, _ := stringAttr(in, "name")
		loc, _ := stringAttr(in, "location_id")
		dbLoc[name] = loc
	}
	triggers, err := m.Instances("google_eventarc_trigger")
	if err != nil {
		return append(errs, err)
	}
	delivered := 0
	for _, in := range triggers {
		svc, _, _ := Nested(in.Body, in.Ctx, "destination", "cloud_run_service", "service")
		name, known := KnownString(svc)
		if !known {
			fail("%s: destination service not known offline", in.Address())
			continue
		}
		f := byName[name]
		if f == nil || f.EntryPoint != w.Trigger.EntryPoint {
			fail("%s delivers to %s (%s), not to %s", in.Address(), name, entryOf(f), w.Trigger.EntryPoint)
			continue
		}
		delivered++
		if r, _, _ := Nested(in.Body, in.Ctx, "destination", "cloud_run_service", "region"); f.Location != "" {
			if s, _ := KnownString(r); s != f.Location {
				fail("%s: destination region %q, the function is in %q", in.Address(), s, f.Location)
			}
		}
		if ct, _ := stringAttr(in, "event_data_content_type"); ct != w.Trigger.ContentType {
			fail("%s: event_data_content_type %q, the function decodes %s", in.Address(), ct, w.Trigger.ContentType)
		}
		filters := map[string][2]string{}
		mcs, err := Blocks(in.Body, in.Ctx, "matching_criteria")
		if err != nil {
			fail("%s: %v", in.Address(), err)
			continue
		}
		for _, mc := range mcs {
			attr, _, _ := Attr(mc.Body, mc.Ctx, "attribute")
			val, _, _ := Attr(mc.Body, mc.Ctx, "value")
			op, _, _ := Attr(mc.Body, mc.Ctx, "operator")
			a, _ := KnownString(attr)
			v, vk := KnownString(val)
			o, _ := KnownString(op)
			if !vk {
				fail("%s: filter %s not known offline", in.Address(), a)
			}
			filters[a] = [2]string{v, o}
		}
		if got := filters["type"][0]; got != w.Trigger.EventType {
			fail("%s: event type %q, want %q", in.Address(), got, w.Trigger.EventType)
		}
		if got := filters["document"]; got[0] != w.Trigger.Document || (strings.Contains(got[0], "{") && got[1] != "match-path-pattern") {
			fail("%s: document filter %q (operator %q), want %q with match-path-pattern", in.Address(), got[0], got[1], w.Trigger.Document)
		}
		db := filters["database"][0]
		loc, ok := dbLoc[db]
		if !ok {
			fail("%s: database filter %q names no google_firestore_database", in.Address(), db)
		} else if tl, _ := stringAttr(in, "location"); loc != "" && tl != firestoreEventarcLocation(loc) {
			fail("%s: location %q: Eventarc serves the Firestore database in %q from %q", in.Address(), tl, loc, firestoreEventarcLocation(loc))
		}
		if sa, ok := stringAttr(in, "service_account"); ok {
			addCaller(f.EntryPoint, "serviceAccount:"+sa, in.Address())
		} else {
			fail("%s: service_account not known offline", in.Address())
		}
	}
	if delivered != 1 {
		fail("%d Eventarc triggers deliver to %s, want 1", delivered, w.Trigger.EntryPoint)
	}

	// The scheduler.
	jobs, err := m.Instances("google_cloud_scheduler_job")
	if err != nil {
		return append(errs, err)
	}
	scheduled := 0
	for _, in := range jobs {
		uri, _, _ := Nested(in.Body, in.Ctx, "http_target", "uri")
		u, known := KnownString(uri)
		if !known {
			fail("%s: http_target.uri not known offline", in.Address())
			continue
		}
		f := byURL[u]
		if f == nil || f.EntryPoint != w.Scheduled {
			fail("%s calls %q, the URL of %s, not of %s", in.Address(), u, entryOf(f), w.Scheduled)
			continue
		}
		scheduled++
		aud, _, _ := Nested(in.Body, in.Ctx, "http_target", "oidc_token", "audience")
		if a, _ := KnownString(aud); a != u {
			fail("%s: OIDC audience %q; Cloud Run accepts the service's URL %q", in.Address(), a, u)
		}
		sa, _, _ := Nested(in.Body, in.Ctx, "http_target", "oidc_token", "service_account_email")
		if s, ok := KnownString(sa); ok {
			addCaller(f.EntryPoint, "serviceAccount:"+s, in.Address())
		} else {
			fail("%s: oidc_token.service_account_email not known offline", in.Address())
		}
	}
	if scheduled != 1 {
		fail("%d scheduler jobs call %s, want 1", scheduled, w.Scheduled)
	}

	// API Gateway calls the API functions with its own account's ID token.
	gwErrs, fronted := checkGateway(m, byEntry, addCaller)
	errs = append(errs, gwErrs...)
	if w.GatewayEnv != "" {
		v, _ := envValue(w.GatewayEnv)
		switch {
		case len(fronted) > 0 && v != "1":
			fail("%s is %q, but API Gateway calls the functions: its ID token in Authorization would be read as the API key and every caller refused (%s=1 reads X-Forwarded-Authorization)", w.GatewayEnv, v, w.GatewayEnv)
		case len(fronted) == 0 && v == "1":
			fail("%s is %q without an API Gateway: the key would be read from X-Forwarded-Authorization, which nothing sets, and every caller refused", w.GatewayEnv, v)
		}
	}

	// Invokers of the functions a known service calls (the private ones,
	// and the API behind a gateway): exactly their callers.
	for ep, want := range callers {
		f := byEntry[ep]
		if f == nil {
			continue
		}
		have := map[string]bool{}
		for _, mbr := range f.Invokers {
			switch {
			case mbr == "":
				fail("%s (%s): an invoker member is not known offline", f.Address, ep)
			case want[mbr] == "":
				fail("%s (%s): %s may invoke it, but only %s calls it", f.Address, ep, mbr, strings.Join(sortedValues(want), ", "))
			}
			have[mbr] = true
		}
		for mbr, who := range want {
			if !have[mbr] {
				fail("%s (%s): %s calls it as %s, which has no invoker binding", f.Address, ep, who, mbr)
			}
		}
	}
	errs = append(errs, checkImage(m, fns, w)...)
	return errs
}

func sortedValues(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, v+" as "+k)
	}
	sort.Strings(out)
	return out
}

func stringAttr(in Instance, name string) (string, bool) {
	v, _, err := Attr(in.Body, in.Ctx, name)
	if err != nil {
		return "", false
	}
	return KnownString(v)
}

// checkImage: the inference image is pushed by a build into a repository
// anyone can read, and the functions get exactly that image.
func checkImage(m *Module, fns []*Function, w Wiring) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	img, known := KnownString(m.Output(w.ImageOutput))
	if !known {
		return []error{fmt.Errorf("output %s is not known offline", w.ImageOutput)}
	}
	for _, f := range fns {
		if v, ok := f.EnvValues[w.ImageEnv]; ok {
			if s, _ := KnownString(v); s != img {
				fail("%s: %s is %q, not the image terraform builds (%s)", f.Address, w.ImageEnv, s, img)
			}
		}
	}
	// LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG
	host, rest, _ := strings.Cut(img, "/")
	parts := strings.Split(rest, "/")
	loc, isAR := strings.CutSuffix(host, "-docker.pkg.dev")
	if !isAR || len(parts) != 3 {
		return append(errs, fmt.Errorf("output %s %q is not an Artifact Registry image (LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE)", w.ImageOutput, img))
	}
	repos, err := m.Instances("google_artifact_registry_repository")
	if err != nil {
		return append(errs, err)
	}
	public, err := publicRepositories(m)
	if err != nil {
		return append(errs, err)
	}
	found := false
	for _, in := range repos {
		id, _ := stringAttr(in, "repository_id")
		l, _ := stringAttr(in, "location")
		if id == parts[1] && l == loc {
			found = true
			if !public[in.Name] {
				fail("%s holds the inference image but is not readable by allUsers (roles/artifactregistry.reader): RunPod pulls it into the users' accounts", in.Address())
			}
		} else if public[in.Name] {
			fail("%s is readable by allUsers, but only the inference image's repository may be", in.Address())
		}
	}
	if !found {
		fail("no google_artifact_registry_repository %q in %q holds the inference image %s", parts[1], loc, img)
	}
	built := false
	for _, typ := range []string{"terraform_data", "null_resource"} {
		insts, err := m.Instances(typ)
		if err != nil {
			return append(errs, err)
		}
		for _, in := range insts {
			for _, p := range in.Body.Blocks {
				if p.Type != "provisioner" {
					continue
				}
				cmd, _, _ := Attr(p.Body, in.Ctx, "command")
				dir, _, _ := Attr(p.Body, in.Ctx, "working_dir")
				c, _ := KnownString(cmd)
				d, _ := KnownString(dir)
				if strings.Contains(c, "gcloud builds submit") && strings.Contains(c, img) && strings.HasSuffix(d, "/inference") {
					built = true
				}
			}
		}
	}
	if !built {
		fail("no build pushes %s from inference/ (a local-exec `gcloud builds submit` in inference/)", img)
	}
	return errs
}

// publicRepositories returns the names of the Artifact Registry resources
// granted to allUsers.
func publicRepositories(m *Module) (map[string]bool, error) {
	out := map[string]bool{}
	for _, typ := range []string{"google_artifact_registry_repository_iam_member", "google_artifact_registry_repository_iam_binding"} {
		insts, err := m.Instances(typ)
		if err != nil {
			return nil, err
		}
		for _, in := range insts {
			ms, err := members(in)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", in.Address(), err)
			}
			pub := false
			for _, mbr := range ms {
				pub = pub || publicMembers[mbr]
			}
			if !pub {
				continue
			}
			refs, err := Refs(in.Body, in.Ctx, "repository", "google_artifact_registry_repository")
			if err != nil || len(refs) == 0 {
				return nil, fmt.Errorf("%s: grants allUsers on a repository the check cannot name", in.Address())
			}
			for _, r := range refs {
				out[strings.SplitN(r, "|", 2)[0]] = true
			}
		}
	}
	return out, nil
}

// checkGateway: every operation of each API Gateway config is sent to the
// function whose entry point names it (the generated document's
// operationIds start with the entry point), as the config's service
// account, which it adds as that function's caller. fronted lists the
// entry points a gateway calls.
func checkGateway(m *Module, byEntry map[string]*Function, addCaller func(ep, member, who string)) (errs []error, fronted map[string]bool) {
	fronted = map[string]bool{}
	insts, err := m.Instances("google_api_gateway_api_config")
	if err != nil {
		return []error{err}, fronted
	}
	for _, in := range insts {
		sa, _, err := Nested(in.Body, in.Ctx, "gateway_config", "backend_config", "google_service_account")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", in.Address(), err))
		}
		account, known := KnownString(sa)
		if !known {
			errs = append(errs, fmt.Errorf("%s: no gateway_config.backend_config.google_service_account known offline: the gateway needs its own account to mint the ID tokens the functions require", in.Address()))
		}
		docs, err := Blocks(in.Body, in.Ctx, "openapi_documents")
		if err != nil {
			return append(errs, fmt.Errorf("%s: %w", in.Address(), err)), fronted
		}
		for _, d := range docs {
			v, _, err := Nested(d.Body, d.Ctx, "document", "contents")
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: document: %w", in.Address(), err))
				continue
			}
			s, known := KnownString(v)
			if !known {
				errs = append(errs, fmt.Errorf("%s: the routing document is not known offline", in.Address()))
				continue
			}
			// contents is base64 (the provider's google_api_gateway_api_config).
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: document.contents is not base64: %w", in.Address(), err))
				continue
			}
			s = string(raw)
			docErrs, eps := checkGatewayDocument(in.Address(), s, byEntry)
			errs = append(errs, docErrs...)
			for _, ep := range eps {
				fronted[ep] = true
				if known {
					addCaller(ep, "serviceAccount:"+account, in.Address())
				}
			}
		}
	}
	return errs, fronted
}

// DependsOnForEach reports, for a data source, each depends_on entry that
// is a resource with for_each (a list that grows with the configuration).
func (m *Module) dependsOnForEach(blk *hclsyntax.Block) []string {
	var out []string
	for _, d := range DependsOn(blk.Body) {
		parts := strings.Split(d, ".")
		if len(parts) != 2 {
			continue
		}
		if dep := m.Block("resource", parts[0], parts[1]); dep != nil {
			if _, ok := dep.Body.Attributes["for_each"]; ok {
				out = append(out, d)
			}
		}
	}
	return out
}

// lifecycleFlag reads a literal lifecycle argument of a block.
func lifecycleFlag(body *hclsyntax.Body, name string) bool {
	for _, b := range body.Blocks {
		if b.Type != "lifecycle" {
			continue
		}
		if a, ok := b.Body.Attributes[name]; ok {
			v, diags := a.Expr.Value(nil)
			return !diags.HasErrors() && v.Type() == cty.Bool && v.True()
		}
	}
	return false
}

// frontDoors are the URLs that serve the whole API: each API Gateway's
// https://DEFAULT_HOSTNAME and each managed certificate's https://DOMAIN
// (the load balancer).
func frontDoors(m *Module) (map[string]bool, error) {
	out := map[string]bool{}
	gws, err := m.Instances("google_api_gateway_gateway")
	if err != nil {
		return nil, err
	}
	for _, in := range gws {
		id, ok := stringAttr(in, "gateway_id")
		if ok {
			out["https://"+gatewayHostname(id)] = true
		}
	}
	certs, err := m.Instances("google_compute_managed_ssl_certificate")
	if err != nil {
		return nil, err
	}
	for _, in := range certs {
		v, _, _ := Nested(in.Body, in.Ctx, "managed", "domains")
		if v.IsKnown() && !v.IsNull() && v.CanIterateElements() {
			for it := v.ElementIterator(); it.Next(); {
				_, d := it.Element()
				if s, ok := KnownString(d); ok {
					out["https://"+s] = true
				}
			}
		}
	}
	return out, nil
}
