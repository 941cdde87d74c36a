package deploycheck

import (
	"fmt"
	"sort"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// Function is one google_cloudfunctions2_function instance.
type Function struct {
	Address    string
	ref        string // "NAME|key", as Refs reports it
	Name       string // "" when computed
	EntryPoint string
	Location   string          // "" when computed
	Env        map[string]bool // plain environment_variables
	// EnvValues are the plain variables' values (unknown where they
	// depend on what only the provider knows).
	EnvValues map[string]cty.Value
	SecretEnv map[string]bool // secret_environment_variables keys
	// BuildServiceAccount is build_config.service_account ("" when unset
	// or not known offline).
	BuildServiceAccount string
	// SourceBucket is build_config.source.storage_source.bucket ("" when
	// not known offline).
	SourceBucket string
	// Ingress is service_config.ingress_settings ("" when unset or not
	// known offline).
	Ingress string
	// DependsOn lists the depends_on references ("TYPE.NAME").
	DependsOn []string
	// Invokers are the members granted an invoker role on the function;
	// "" stands for a member only known after apply (a service account).
	Invokers []string
}

// invokerRoles are the roles that let a member call a function.
var invokerRoles = map[string]bool{"roles/run.invoker": true, "roles/cloudfunctions.invoker": true}

// iamTypes are the resources that grant a role on a function's service.
var iamTypes = []string{
	"google_cloud_run_v2_service_iam_member", "google_cloud_run_service_iam_member", "google_cloudfunctions2_function_iam_member",
	"google_cloud_run_v2_service_iam_binding", "google_cloud_run_service_iam_binding", "google_cloudfunctions2_function_iam_binding",
}

// policyTypes replace a function's whole IAM policy: the check cannot read
// their members, so it refuses them.
var policyTypes = []string{"google_cloud_run_v2_service_iam_policy", "google_cloud_run_service_iam_policy", "google_cloudfunctions2_function_iam_policy"}

// Functions reads every function of the module with its entry point,
// environment names and invokers. An IAM resource it cannot attribute to a
// function is reported in problems; the functions are still returned.
func (m *Module) Functions() (fns []*Function, problems []error, err error) {
	insts, err := m.Instances(FunctionType)
	if err != nil {
		return nil, nil, err
	}
	for _, in := range insts {
		f := &Function{Address: in.Address(), Env: map[string]bool{}, EnvValues: map[string]cty.Value{}, SecretEnv: map[string]bool{}}
		f.DependsOn = DependsOn(in.Body)
		if v, _, err := Attr(in.Body, in.Ctx, "location"); err == nil {
			f.Location, _ = KnownString(v)
		}
		if v, _, err := Nested(in.Body, in.Ctx, "build_config", "service_account"); err == nil {
			f.BuildServiceAccount, _ = KnownString(v)
		}
		if v, _, err := Nested(in.Body, in.Ctx, "build_config", "source", "storage_source", "bucket"); err == nil {
			f.SourceBucket, _ = KnownString(v)
		}
		if v, _, err := Nested(in.Body, in.Ctx, "service_config", "ingress_settings"); err == nil {
			f.Ingress, _ = KnownString(v)
		}
		f.ref = in.Name + "|"
		if s, ok := KnownString(in.Key); ok {
			f.ref += s
		}
		if v, _, err := Attr(in.Body, in.Ctx, "name"); err == nil {
			f.Name, _ = KnownString(v)
		}
		ep, ok, err := Nested(in.Body, in.Ctx, "build_config", "entry_point")
		if err != nil {
			return nil, nil, fmt.Errorf("%s: build_config: %w", f.Address, err)
		}
		if f.EntryPoint, _ = KnownString(ep); !ok || f.EntryPoint == "" {
			return nil, nil, fmt.Errorf("%s: build_config.entry_point is missing or not a literal string", f.Address)
		}
		scs, err := Blocks(in.Body, in.Ctx, "service_config")
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.Address, err)
		}
		for _, sc := range scs {
			env, ok, err := Attr(sc.Body, sc.Ctx, "environment_variables")
			if err != nil {
				return nil, nil, fmt.Errorf("%s: service_config: %w", f.Address, err)
			}
			if ok && !env.IsNull() {
				if !env.IsKnown() || !(env.Type().IsObjectType() || env.Type().IsMapType()) {
					return nil, nil, fmt.Errorf("%s: service_config.environment_variables: names not known offline (spell them out in the configuration)", f.Address)
				}
				for it := env.ElementIterator(); it.Next(); {
					k, v := it.Element()
					f.Env[k.AsString()] = true
					f.EnvValues[k.AsString()] = v
				}
			}
			secrets, err := Blocks(sc.Body, sc.Ctx, "secret_environment_variables")
			if err != nil {
				return nil, nil, fmt.Errorf("%s: service_config: %w", f.Address, err)
			}
			for _, s := range secrets {
				v, _, err := Attr(s.Body, s.Ctx, "key")
				key, known := KnownString(v)
				if err != nil || !known {
					return nil, nil, fmt.Errorf("%s: secret_environment_variables.key not known offline", f.Address)
				}
				f.SecretEnv[key] = true
			}
		}
		fns = append(fns, f)
	}
	problems, err = m.invokers(fns)
	if err != nil {
		return nil, nil, err
	}
	return fns, problems, nil
}

func (m *Module) invokers(fns []*Function) (problems []error, err error) {
	for _, typ := range policyTypes {
		insts, err := m.Instances(typ)
		if err != nil {
			return nil, err
		}
		if len(insts) > 0 {
			return nil, fmt.Errorf("%s: the check cannot read an IAM policy resource; grant invokers with *_iam_member", insts[0].Address())
		}
	}
	for _, typ := range iamTypes {
		insts, err := m.Instances(typ)
		if err != nil {
			return nil, err
		}
		for _, in := range insts {
			role, _, err := Attr(in.Body, in.Ctx, "role")
			if err != nil {
				return nil, fmt.Errorf("%s: %w", in.Address(), err)
			}
			r, known := KnownString(role)
			if !known {
				return nil, fmt.Errorf("%s: role not known offline", in.Address())
			}
			if !invokerRoles[r] {
				continue
			}
			members, err := members(in)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", in.Address(), err)
			}
			targets, err := targets(in, fns)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", in.Address(), err))
				continue
			}
			for _, f := range targets {
				f.Invokers = append(f.Invokers, members...)
			}
		}
	}
	return problems, nil
}

func members(in Instance) ([]string, error) {
	if v, ok, err := Attr(in.Body, in.Ctx, "member"); ok {
		if err != nil {
			return nil, err
		}
		s, _ := KnownString(v)
		return []string{s}, nil
	}
	v, ok, err := Attr(in.Body, in.Ctx, "members")
	if err != nil || !ok {
		return nil, fmt.Errorf("no member or members: %v", err)
	}
	if !v.IsKnown() || v.IsNull() {
		return nil, fmt.Errorf("members not known offline")
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		s, _ := KnownString(e)
		out = append(out, s)
	}
	return out, nil
}

// targets finds the function an IAM resource instance grants on: by
// reference to the function resource, else by a literal service name.
func targets(in Instance, fns []*Function) ([]*Function, error) {
	var out []*Function
	for _, attr := range []string{"name", "service", "cloud_function"} {
		refs, err := Refs(in.Body, in.Ctx, attr, FunctionType)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			for _, f := range fns {
				if f.ref == r {
					out = append(out, f)
				}
			}
		}
		if len(out) > 0 {
			return out, nil
		}
		if v, ok, err := Attr(in.Body, in.Ctx, attr); ok && err == nil {
			if s, known := KnownString(v); known {
				for _, f := range fns {
					if f.Name != "" && (f.Name == s || strings.HasSuffix(s, "/"+f.Name)) {
						out = append(out, f)
					}
				}
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, fmt.Errorf("cannot tell which %s it grants on", FunctionType)
}

// Want is what the code needs of the deployment.
type Want struct {
	// EntryPoints: each needs a function; a function with another entry
	// point is an error too.
	EntryPoints []string
	// Env: names every function must get (plain or secret).
	Env []string
	// Secret: names that must come from Secret Manager, never plain.
	Secret []string
	// Allowed: every name the configuration may set (the code reads it).
	Allowed []string
	// Public: the API's entry points, reached through the base URL: each
	// needs an invoker (CheckWiring checks that it is API Gateway's
	// account when a gateway calls it). Private: entry points nobody but
	// their service accounts may invoke; each needs at least one invoker.
	Public, Private []string
}

// publicMembers may never invoke a private function.
var publicMembers = map[string]bool{"allUsers": true, "allAuthenticatedUsers": true}

// reserved are names Cloud Run sets itself and refuses in a deployment.
var reserved = map[string]bool{"PORT": true, "K_SERVICE": true, "K_REVISION": true, "K_CONFIGURATION": true}

// Check compares the functions with what the code needs and returns every
// mismatch.
func Check(fns []*Function, w Want) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	byEntry := map[string][]*Function{}
	for _, f := range fns {
		byEntry[f.EntryPoint] = append(byEntry[f.EntryPoint], f)
	}
	wantEntry := map[string]bool{}
	for _, ep := range w.EntryPoints {
		wantEntry[ep] = true
		if len(byEntry[ep]) == 0 {
			fail("entry point %s: no %s with entry_point = %q", ep, FunctionType, ep)
		}
	}
	allowed := map[string]bool{}
	for _, n := range w.Allowed {
		allowed[n] = true
	}
	secret := map[string]bool{}
	for _, n := range w.Secret {
		secret[n] = true
	}
	for _, f := range fns {
		if !wantEntry[f.EntryPoint] {
			fail("%s: entry point %q is not registered in functions.go", f.Address, f.EntryPoint)
		}
		for _, n := range w.Env {
			if !f.Env[n] && !f.SecretEnv[n] {
				fail("%s (%s): %s is not set", f.Address, f.EntryPoint, n)
			}
		}
		for _, n := range sortedKeys(f.Env, f.SecretEnv) {
			switch {
			case f.Env[n] && f.SecretEnv[n]:
				fail("%s: %s is set both plain and from a secret", f.Address, n)
			case strings.Contains(n, "EMULATOR"):
				fail("%s: %s points the service at a local emulator; never set it in the cloud", f.Address, n)
			case reserved[n]:
				fail("%s: %s is reserved by Cloud Run", f.Address, n)
			case !allowed[n]:
				fail("%s: sets %s, which the code never reads (not in config.Vars)", f.Address, n)
			}
			if secret[n] && f.Env[n] {
				fail("%s: %s must come from Secret Manager (secret_environment_variables), not a plain variable", f.Address, n)
			}
		}
	}
	for _, ep := range w.Public {
		for _, f := range byEntry[ep] {
			if len(f.Invokers) == 0 {
				fail("%s (%s): API function with no invoker: the base URL (API Gateway's account, or the load balancer through allUsers) cannot reach it", f.Address, ep)
			}
			// allUsers is for the load balancer, whose serverless NEG sends
			// no token: ingress must then admit nothing else.
			if hasPublic(f.Invokers) && f.Ingress != "ALLOW_INTERNAL_AND_GCLB" && f.Ingress != "ALLOW_INTERNAL_ONLY" {
				fail("%s (%s): granted to allUsers with ingress %q: anyone can call its own URL, around the base URL; allUsers only behind the load balancer, with ingress ALLOW_INTERNAL_AND_GCLB", f.Address, ep, f.Ingress)
			}
		}
	}
	for _, ep := range w.Private {
		for _, f := range byEntry[ep] {
			if hasPublic(f.Invokers) {
				fail("%s (%s): private function granted to allUsers/allAuthenticatedUsers", f.Address, ep)
			}
			if len(f.Invokers) == 0 {
				fail("%s (%s): no invoker binding: its caller's service account cannot invoke it", f.Address, ep)
			}
		}
	}
	return errs
}

func hasPublic(members []string) bool {
	for _, m := range members {
		if publicMembers[m] {
			return true
		}
	}
	return false
}

func sortedKeys(ms ...map[string]bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// String describes a function for test logs.
func (f *Function) String() string {
	return fmt.Sprintf("%s entry_point=%s env=%v secret_env=%v invokers=%q", f.Address, f.EntryPoint,
		sortedKeys(f.Env), sortedKeys(f.SecretEnv), f.Invokers)
}
