package orchestrator_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	orchestrator "github.com/visgate/deployment-orchestrator"
	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/deploycheck"
)

// want is what the code needs of terraform/: a function per entry point,
// every Cloud variable of config.Vars on every function (config.Load is the
// same for all of them), secrets from Secret Manager, no variable the code
// does not read, and only the API public.
func want(t *testing.T) deploycheck.Want {
	t.Helper()
	w := deploycheck.Want{
		EntryPoints: orchestrator.EntryPoints(),
		Secret:      []string{"API_KEY_HASHES", "WEBHOOK_SIGNING_KEY"},
		Public:      api.Functions(),
		Private:     []string{orchestrator.FnProvisionTask, orchestrator.FnDeploymentChanged, orchestrator.FnReconcile},
	}
	for _, v := range config.Vars {
		w.Allowed = append(w.Allowed, v.Name)
		if v.Cloud {
			w.Env = append(w.Env, v.Name)
		}
	}
	// Names the code reads outside config.Vars (GOOGLE_CLOUD_PROJECT, the
	// emulator hosts, which Check refuses anyway).
	w.Allowed = append(w.Allowed, directEnvReads(t)...)
	for _, n := range w.Secret {
		found := false
		for _, v := range config.Vars {
			found = found || (v.Name == n && v.Cloud)
		}
		if !found {
			t.Fatalf("%s is no longer a Cloud variable of config.Vars: update this test and terraform/kms_secrets.tf", n)
		}
	}
	return w
}

// directEnvReads lists the literal names passed to os.Getenv,
// os.LookupEnv or a getenv func in the module's non-test Go files.
func directEnvReads(t *testing.T) []string {
	t.Helper()
	names := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "tools", "terraform", ".data", ".emulators", "artifacts", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			var fn string
			switch e := call.Fun.(type) {
			case *ast.SelectorExpr:
				if x, ok := e.X.(*ast.Ident); ok && x.Name == "os" {
					fn = e.Sel.Name
				}
			case *ast.Ident:
				fn = e.Name
			}
			if fn != "Getenv" && fn != "LookupEnv" && fn != "getenv" {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					names[s] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func checkDir(t *testing.T, dir string) ([]*deploycheck.Function, []error) {
	t.Helper()
	m, err := deploycheck.Load(dir)
	if err != nil {
		return nil, []error{err}
	}
	fns, problems, err := m.Functions()
	if err != nil {
		return nil, []error{err}
	}
	return fns, append(problems, deploycheck.Check(fns, want(t))...)
}

// TestTerraformMatchesCode: terraform/ deploys what functions.go registers,
// with the environment shared/config reads, and only the API public.
func TestTerraformMatchesCode(t *testing.T) {
	fns, errs := checkDir(t, "terraform")
	for _, f := range fns {
		t.Log(f)
	}
	for _, err := range errs {
		t.Error(err)
	}
	if len(fns) != len(orchestrator.EntryPoints()) {
		t.Errorf("%d functions for %d entry points", len(fns), len(orchestrator.EntryPoints()))
	}
}

// TestTerraformCheckCatchesMistakes proves the check is not vacuous: each
// mutation of a copy of terraform/ must make it fail with the named problem.
func TestTerraformCheckCatchesMistakes(t *testing.T) {
	cases := []struct {
		name, file string
		from, to   string // regexp and replacement, applied once
		want       string // substring of some error
	}{
		{"function resource renamed away", "functions.tf", `resource "google_cloudfunctions2_function" "fn"`, `resource "google_cloudfunctions2_functionx" "fn"`, "entry point Service: no google_cloudfunctions2_function"},
		{"function removed", "functions.tf", `(?s)\n    reconcile = \{.*?\n    \}\n`, "\n", "entry point Reconcile: no google_cloudfunctions2_function"},
		{"env var removed", "functions.tf", `\n\s*KMS_KEY_URI\s*=.*\n`, "\n", "KMS_KEY_URI is not set"},
		{"unknown env var", "functions.tf", `\n(\s*)BACKEND(\s*)=`, "\n${1}SOMETHING_ELSE = \"x\"\n${1}BACKEND${2}=", "sets SOMETHING_ELSE, which the code never reads"},
		{"emulator env var", "functions.tf", `\n(\s*)BACKEND(\s*)=`, "\n${1}FIRESTORE_EMULATOR_HOST = \"x\"\n${1}BACKEND${2}=", "FIRESTORE_EMULATOR_HOST points the service at a local emulator"},
		{"secret env removed", "functions.tf", `(?s)\n\s*dynamic "secret_environment_variables" \{.*?\n    \}\n`, "\n", "API_KEY_HASHES is not set"},
		{"secret made plain", "functions.tf", `\n(\s*)BACKEND(\s*)=`, "\n${1}WEBHOOK_SIGNING_KEY = \"x\"\n${1}BACKEND${2}=", "WEBHOOK_SIGNING_KEY is set both plain and from a secret"},
		{"task handler public", "functions.tf", `invokers    = \["tasks"\]`, `invokers    = ["tasks", "public"]`, `ProvisionTask): private function granted to allUsers`},
		{"trigger public", "functions.tf", `invokers    = \["trigger"\]`, `invokers    = ["public"]`, `DeploymentChanged): private function granted to allUsers`},
		{"reconcile without invoker", "functions.tf", `invokers    = \["scheduler"\]`, `invokers    = []`, `Reconcile): no invoker binding`},
		{"api not public", "functions.tf", `(entry_point = "GetDeployment"(?s:.*?))invokers    = \["public"\]`, `${1}invokers    = []`, `GetDeployment): public API function without an allUsers invoker`},
		{"allUsers granted directly", "functions.tf", `\z`, "\nresource \"google_cloud_run_v2_service_iam_member\" \"oops\" {\n  name   = google_cloudfunctions2_function.fn[\"reconcile\"].name\n  role   = \"roles/run.invoker\"\n  member = \"allUsers\"\n}\n", `Reconcile): private function granted to allUsers`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyTerraform(t)
			path := filepath.Join(dir, c.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			re := regexp.MustCompile(c.from)
			loc := re.FindSubmatchIndex(b)
			if loc == nil {
				t.Fatalf("mutation target %q not found in %s: update this test with terraform/", c.from, c.file)
			}
			var out []byte
			out = append(out, b[:loc[0]]...)
			out = re.Expand(out, []byte(c.to), b, loc)
			out = append(out, b[loc[1]:]...)
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			_, errs := checkDir(t, dir)
			var msgs []string
			for _, err := range errs {
				msgs = append(msgs, err.Error())
				if strings.Contains(err.Error(), c.want) {
					return
				}
			}
			t.Errorf("want an error containing %q, got:\n%s", c.want, strings.Join(msgs, "\n"))
		})
	}
}

func copyTerraform(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	paths, err := filepath.Glob(filepath.Join("terraform", "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no terraform/*.tf: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
