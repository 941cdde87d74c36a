//go:build terraformreal

package orchestrator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	orchestrator "github.com/visgate/deployment-orchestrator"
)

// The real terraform: init from a filesystem mirror of the pinned providers
// (scripts/terraform-providers.sh makes it), validate, and plan
// -refresh=false for each documented variant, with a dummy access token, no
// credentials and no network. The mirror is found at VISGATE_TERRAFORM_MIRROR
// or at its default place in the user's cache. These tests are built only
// with -tags terraformreal, which make test (scripts/test.sh) sets when the
// mirror exists or REQUIRE_TERRAFORM=1 asks for it; without the tag its
// summary says they were not run and why, so that a machine without the
// providers shows no skipped test. Built with the tag and no mirror, they
// skip with a sentence, unless REQUIRE_TERRAFORM=1 makes that a failure.

// mirrorKey names the mirror of exactly these provider versions, as
// scripts/terraform-providers.sh does: name-version, by name, joined by _.
func mirrorKey(pins []providerPin) string {
	parts := make([]string, len(pins))
	for i, p := range pins {
		parts[i] = p.Name + "-" + p.Version
	}
	return strings.Join(parts, "_")
}

// terraformMirror is the mirror directory for pins: VISGATE_TERRAFORM_MIRROR,
// else terraform-providers-KEY in the user's cache.
func terraformMirror(pins []providerPin) (string, error) {
	if d := os.Getenv("VISGATE_TERRAFORM_MIRROR"); d != "" {
		return d, nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no XDG_CACHE_HOME and no home directory: %w", err)
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "visgate-orchestrator", "terraform-providers-"+mirrorKey(pins)), nil
}

// missingProviders lists the providers of pins that mirror lacks, in either
// layout terraform's filesystem_mirror reads: packed (the zip that
// `terraform providers mirror` writes) or unpacked (the provider's binary).
func missingProviders(mirror string, pins []providerPin) []string {
	platform := runtime.GOOS + "_" + runtime.GOARCH
	var missing []string
	for _, p := range pins {
		base := filepath.Join(mirror, "registry.terraform.io", "hashicorp", p.Name)
		zip := filepath.Join(base, "terraform-provider-"+p.Name+"_"+p.Version+"_"+platform+".zip")
		bin := filepath.Join(base, p.Version, platform, "terraform-provider-"+p.Name+"_v"+p.Version)
		if _, err := os.Stat(zip); err == nil {
			continue
		}
		if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
			continue
		}
		missing = append(missing, p.Name+" "+p.Version)
	}
	return missing
}

// tfRunner runs terraform against the mirror only.
type tfRunner struct {
	bin       string
	cliConfig string
	env       []string
}

// newTFRunner finds terraform and a complete mirror, or skips (fails with
// REQUIRE_TERRAFORM=1) with the reason.
func newTFRunner(t *testing.T) *tfRunner {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("REQUIRE_TERRAFORM") == "1" {
			t.Fatalf("%s (REQUIRE_TERRAFORM=1 forbids skipping)", msg)
		}
		t.Skip(msg)
	}
	bin, err := exec.LookPath("terraform")
	if err != nil {
		unavailable("terraform is not installed: the real validate and plan need it (and make terraform-providers)")
	}
	pins, err := providerPins("terraform")
	if err != nil {
		t.Fatal(err)
	}
	mirror, err := terraformMirror(pins)
	if err != nil {
		unavailable("no provider mirror: %v", err)
	}
	if missing := missingProviders(mirror, pins); len(missing) > 0 {
		unavailable("the provider mirror %s lacks %s: make terraform-providers makes it once per machine (it needs registry.terraform.io), or point VISGATE_TERRAFORM_MIRROR at one", mirror, strings.Join(missing, ", "))
	}
	return mirrorRunner(t, bin, mirror)
}

// mirrorRunner runs bin with a CLI configuration that installs providers
// from mirror only.
func mirrorRunner(t *testing.T, bin, mirror string) *tfRunner {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "terraform.rc")
	rc := fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path    = %q\n    include = [\"registry.terraform.io/hashicorp/*\"]\n  }\n}\n", mirror)
	if err := os.WriteFile(cfg, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	// Only what terraform needs: no credentials of the user's, a dummy
	// token that the providers accept without calling Google, and no
	// update check.
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"TMPDIR=" + os.TempDir(),
		"TF_CLI_CONFIG_FILE=" + cfg,
		"TF_IN_AUTOMATION=1",
		"TF_INPUT=0",
		"CHECKPOINT_DISABLE=1",
		"GOOGLE_OAUTH_ACCESS_TOKEN=dummy-token-for-plan",
	}
	return &tfRunner{bin: bin, cliConfig: cfg, env: env}
}

// run runs terraform with args in dir and returns its combined output.
func (r *tfRunner) run(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Dir = dir
	cmd.Env = r.env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("terraform %s in %s: %w\n%s", strings.Join(args, " "), dir, err, out.String())
	}
	return out.String(), nil
}

// tfPlan is the part of `terraform show -json PLAN` the tests read.
type tfPlan struct {
	PlannedValues struct {
		RootModule tfModule `json:"root_module"`
	} `json:"planned_values"`
}

type tfModule struct {
	Resources    []tfResource `json:"resources"`
	ChildModules []tfModule   `json:"child_modules"`
}

type tfResource struct {
	Address      string         `json:"address"`
	Mode         string         `json:"mode"`
	Type         string         `json:"type"`
	ProviderName string         `json:"provider_name"`
	Values       map[string]any `json:"values"`
}

// Resources lists the planned managed resources of every module.
func (p *tfPlan) Resources() []tfResource {
	var out []tfResource
	var walk func(m tfModule)
	walk = func(m tfModule) {
		for _, r := range m.Resources {
			if r.Mode == "managed" {
				out = append(out, r)
			}
		}
		for _, c := range m.ChildModules {
			walk(c)
		}
	}
	walk(p.PlannedValues.RootModule)
	return out
}

// OfType lists the planned resources of one type.
func (p *tfPlan) OfType(typ string) []tfResource {
	var out []tfResource
	for _, r := range p.Resources() {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// plan runs plan -refresh=false in dir with vars and returns the parsed plan.
func (r *tfRunner) plan(ctx context.Context, dir string, vars map[string]string) (*tfPlan, string, error) {
	planFile := filepath.Join(dir, fmt.Sprintf("plan-%d.tfplan", time.Now().UnixNano()))
	args := []string{"plan", "-refresh=false", "-lock=false", "-input=false", "-no-color", "-out=" + planFile}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "-var="+k+"="+vars[k])
	}
	out, err := r.run(ctx, dir, args...)
	if err != nil {
		return nil, out, err
	}
	js, err := r.run(ctx, dir, "show", "-json", planFile)
	if err != nil {
		return nil, out, err
	}
	var p tfPlan
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		return nil, out, fmt.Errorf("terraform show -json: %w", err)
	}
	return &p, out, nil
}

// planVariants are the documented variants (variables.tf, README "Deploy to
// Google Cloud"): the defaults, a Firestore in each multi-region and in
// us-central1, and the load balancer.
var planVariants = []struct {
	name string
	vars map[string]string
}{
	{"defaults", nil},
	{"firestore nam5", map[string]string{"firestore_location": "nam5"}},
	{"firestore eur3", map[string]string{"firestore_location": "eur3"}},
	{"us-central1", map[string]string{"region": "us-central1", "firestore_location": "us-central1"}},
	{"load balancer", map[string]string{"enable_load_balancer": "true", "domain": "api.example.com"}},
}

// planChecks are assertions on every variant's plan but the one a row
// names in except.
var planChecks = []struct {
	name   string
	except string // a planVariants name the row does not hold for
	check  func(p *tfPlan) error
}{
	{"a function per entry point", "", func(p *tfPlan) error {
		got := map[string]bool{}
		for _, r := range p.OfType("google_cloudfunctions2_function") {
			if cfg, ok := firstBlock(r.Values, "build_config"); ok {
				if ep, ok := cfg["entry_point"].(string); ok {
					got[ep] = true
				}
			}
		}
		var missing []string
		for _, ep := range orchestrator.EntryPoints() {
			if !got[ep] {
				missing = append(missing, ep)
			}
		}
		if len(missing) > 0 || len(got) != len(orchestrator.EntryPoints()) {
			return fmt.Errorf("planned entry points %v; missing %v", sortedSet(got), missing)
		}
		return nil
	}},
	{"API Gateway resources on google-beta", "", func(p *tfPlan) error {
		for _, r := range p.Resources() {
			if strings.HasPrefix(r.Type, "google_api_gateway_") && r.ProviderName != "registry.terraform.io/hashicorp/google-beta" {
				return fmt.Errorf("%s is planned with %s", r.Address, r.ProviderName)
			}
		}
		return nil
	}},
	// The load balancer sends no ID token: its API functions take allUsers,
	// behind ingress ALLOW_INTERNAL_AND_GCLB (the consistency test checks that).
	{"no allUsers binding on any function", "load balancer", func(p *tfPlan) error {
		for _, r := range p.Resources() {
			if !strings.HasPrefix(r.Type, "google_cloud_run_v2_service_iam_") && !strings.HasPrefix(r.Type, "google_cloudfunctions2_function_iam_") {
				continue
			}
			for _, m := range planMembers(r.Values) {
				if m == "allUsers" || m == "allAuthenticatedUsers" {
					return fmt.Errorf("%s grants %s", r.Address, m)
				}
			}
		}
		return nil
	}},
	{"Firestore point-in-time recovery", "", func(p *tfPlan) error {
		dbs := p.OfType("google_firestore_database")
		if len(dbs) == 0 {
			return fmt.Errorf("no google_firestore_database planned")
		}
		for _, db := range dbs {
			if v := db.Values["point_in_time_recovery_enablement"]; v != "POINT_IN_TIME_RECOVERY_ENABLED" {
				return fmt.Errorf("%s: point_in_time_recovery_enablement %v", db.Address, v)
			}
		}
		return nil
	}},
	{"Firestore backup schedule", "", func(p *tfPlan) error {
		if len(p.OfType("google_firestore_backup_schedule")) == 0 {
			return fmt.Errorf("no google_firestore_backup_schedule planned")
		}
		return nil
	}},
}

// firstBlock returns the first element of a nested block list in planned values.
func firstBlock(values map[string]any, name string) (map[string]any, bool) {
	l, ok := values[name].([]any)
	if !ok || len(l) == 0 {
		return nil, false
	}
	m, ok := l[0].(map[string]any)
	return m, ok
}

// planMembers lists the members an IAM resource grants (member or members).
func planMembers(values map[string]any) []string {
	var out []string
	if m, ok := values["member"].(string); ok {
		out = append(out, m)
	}
	if ms, ok := values["members"].([]any); ok {
		for _, m := range ms {
			if s, ok := m.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// tfInitDir copies terraform/ to a temporary directory and runs init there
// from the mirror only.
func tfInitDir(ctx context.Context, t *testing.T, r *tfRunner) string {
	t.Helper()
	dir := copyTerraform(t)
	start := time.Now()
	if out, err := r.run(ctx, dir, "init", "-input=false", "-no-color", "-backend=false"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("terraform init from the mirror: %v", time.Since(start).Round(time.Millisecond))
	return dir
}

// tfCopy makes a copy of an initialised dir that shares its providers: the
// configuration files and the lock are copied, .terraform/providers is a
// symbolic link to the original's.
func tfCopy(t *testing.T, initialised string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(initialised)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".tfplan") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(initialised, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".terraform.lock.hcl")); err != nil {
		t.Fatalf("init made no lock file: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".terraform"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(initialised, ".terraform", "providers"), filepath.Join(dir, ".terraform", "providers")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTerraformValidateAndPlan runs the real terraform on terraform/: init
// once from the mirror, validate, then plan every documented variant and
// check the plans. One test, so that init runs once for all of them.
func TestTerraformValidateAndPlan(t *testing.T) {
	r := newTFRunner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := tfInitDir(ctx, t, r)

	start := time.Now()
	out, err := r.run(ctx, dir, "validate", "-no-color")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "The configuration is valid") {
		t.Fatalf("terraform validate said:\n%s", out)
	}
	t.Logf("terraform validate: %v", time.Since(start).Round(time.Millisecond))

	for _, v := range planVariants {
		t.Run(v.name, func(t *testing.T) {
			vars := map[string]string{"project_id": "test-project"}
			for k, val := range v.vars {
				vars[k] = val
			}
			start := time.Now()
			p, _, err := r.plan(ctx, dir, vars)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("terraform plan -refresh=false: %d resources planned in %v", len(p.Resources()), time.Since(start).Round(time.Millisecond))
			for _, c := range planChecks {
				if c.except == v.name {
					continue
				}
				if err := c.check(p); err != nil {
					t.Errorf("%s: %v", c.name, err)
				}
			}
		})
	}
}

// containsWords reports whether want is in out, whatever the line wrapping:
// terraform wraps its diagnostics to the width of a terminal.
func containsWords(out, want string) bool {
	return strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " "))
}

// TestTerraformToolsCatchMistakes: each mutation of terraform/ that the
// provider's schema or terraform's evaluation refuses fails validate or
// plan, and the message names it. (What only Google's API would refuse, like
// a missing IAM role, is TestTerraformCheckCatchesMistakes' job.)
func TestTerraformToolsCatchMistakes(t *testing.T) {
	r := newTFRunner(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	base := tfInitDir(ctx, t, r)

	cases := []struct {
		name, file string
		from, to   string // regexp and replacement, applied once
		tool       string // "validate" or "plan": the first that must refuse it
		want       string // substring of terraform's output
	}{
		// The review's (issue 24).
		{"misspelled argument", "functions.tf", `max_instance_request_concurrency =`, `max_instance_request_concurency =`, "validate", `An argument named "max_instance_request_concurency" is not expected here`},
		{"reference to a resource that does not exist", "functions.tf", `TASKS_SERVICE_ACCOUNT = google_service_account.sa\["tasks"\].email`, `TASKS_SERVICE_ACCOUNT = google_service_account.tasks.email`, "validate", `Reference to undeclared resource`},
		{"API Gateway on the GA provider", "gateway.tf", `(resource "google_api_gateway_api" "api" \{[^}]*?)\n  provider = google-beta\n`, "${1}\n", "validate", `does not support resource type "google_api_gateway_api"`},
		{"invalid ingress value", "functions.tf", `: "ALLOW_ALL"`, `: "ALLOW_EVERYONE"`, "plan", `ALLOW_EVERYONE`},

		// Our own.
		{"attribute that does not exist", "functions.tf", `TASKS_SERVICE_ACCOUNT = google_service_account.sa\["tasks"\].email`, `TASKS_SERVICE_ACCOUNT = google_service_account.sa["tasks"].mail`, "validate", `Unsupported attribute`},
		{"resource declared twice", "iam.tf", `\z`, "\nresource \"google_service_account\" \"sa\" {\n  account_id = \"dup\"\n}\n", "validate", `Duplicate resource "google_service_account" configuration`},
		{"required argument removed", "tasks.tf", `(resource "google_cloud_tasks_queue" "provision" \{(?s:.*?))\n  location *= [^\n]*\n`, "${1}\n", "validate", `The argument "location" is required`},
		{"a key of a map that does not exist", "functions.tf", `TASKS_SERVICE_ACCOUNT = google_service_account.sa\["tasks"\].email`, `TASKS_SERVICE_ACCOUNT = google_service_account.sa["taskz"].email`, "plan", `Invalid index`},
		{"string where a number belongs", "functions.tf", `max_instance_request_concurrency = each.value.concurrency`, `max_instance_request_concurrency = "many"`, "validate", `Inappropriate value for attribute "max_instance_request_concurrency"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := tfCopy(t, base)
			mutate(t, filepath.Join(dir, c.file), c.from, c.to)
			out, verr := r.run(ctx, dir, "validate", "-no-color")
			if c.tool == "validate" {
				if verr == nil || !containsWords(out, c.want) {
					t.Fatalf("want terraform validate to refuse it with %q; it said (err %v):\n%s", c.want, verr, out)
				}
				return
			}
			if verr != nil {
				t.Fatalf("validate refused it; the table says only plan does (move it to \"validate\"):\n%s", out)
			}
			_, out, perr := r.plan(ctx, dir, map[string]string{"project_id": "test-project"})
			if perr == nil || !containsWords(out, c.want) {
				t.Fatalf("want terraform plan to refuse it with %q; it said (err %v):\n%s", c.want, perr, out)
			}
		})
	}
}
