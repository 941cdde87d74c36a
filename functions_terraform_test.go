package orchestrator_test

import (
	"fmt"
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
	"sync"
	"testing"

	"github.com/zclconf/go-cty/cty"

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
	envReadsOnce.Do(func() { envReads, envReadsErr = directEnvReads() })
	if envReadsErr != nil {
		t.Fatal(envReadsErr)
	}
	w.Allowed = append(w.Allowed, envReads...)
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

// envReads caches directEnvReads: every check of every mutation needs it.
var (
	envReadsOnce sync.Once
	envReads     []string
	envReadsErr  error
)

// directEnvReads lists the literal names passed to os.Getenv,
// os.LookupEnv or a getenv func in the module's non-test Go files.
func directEnvReads() ([]string, error) {
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
		return nil, err
	}
	var out []string
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// wiring is how the code expects the functions to find and call each
// other (shared/queue/cloudtasks, functions/notify, functions/reconcile).
var wiring = deploycheck.Wiring{
	TaskHandler:    orchestrator.FnProvisionTask,
	TaskURLEnv:     "PROVISION_TASK_URL",
	TaskAccountEnv: "TASKS_SERVICE_ACCOUNT",
	Trigger: deploycheck.TriggerWant{
		EntryPoint:  orchestrator.FnDeploymentChanged,
		EventType:   "google.cloud.firestore.document.v1.written",
		Document:    "deployments/{id}",
		ContentType: "application/protobuf",
	},
	Scheduled:     orchestrator.FnReconcile,
	BaseURLEnv:    "PUBLIC_BASE_URL",
	BaseURLOutput: "api_base_url",
	ImageEnv:      "INFERENCE_IMAGE",
	ImageOutput:   "inference_image",
	GatewayEnv:    "BEHIND_GATEWAY",
}

// variableSets are the configurations checked: the defaults, a
// multi-region Firestore of each kind, and the load balancer.
var variableSets = []struct {
	name string
	vars map[string]cty.Value
}{
	{"defaults", nil},
	{"firestore nam5", map[string]cty.Value{"firestore_location": cty.StringVal("nam5")}},
	{"firestore eur3", map[string]cty.Value{"firestore_location": cty.StringVal("eur3")}},
	{"load balancer", map[string]cty.Value{"enable_load_balancer": cty.True, "domain": cty.StringVal("api.example.com")}},
}

// checkDir checks dir under every variable set; the functions returned are
// those of the defaults.
func checkDir(t *testing.T, dir string) ([]*deploycheck.Function, []error) {
	t.Helper()
	var (
		first []*deploycheck.Function
		errs  []error
	)
	for i, set := range variableSets {
		vars := map[string]cty.Value{"project_id": cty.StringVal("test-project")}
		for k, v := range set.vars {
			vars[k] = v
		}
		fns, problems := checkModule(t, dir, vars)
		if i == 0 {
			first = fns
		}
		for _, p := range problems {
			errs = append(errs, fmt.Errorf("[%s] %w", set.name, p))
		}
	}
	return first, errs
}

func checkModule(t *testing.T, dir string, vars map[string]cty.Value) ([]*deploycheck.Function, []error) {
	t.Helper()
	m, err := deploycheck.LoadWith(dir, vars)
	if err != nil {
		return nil, []error{err}
	}
	// What needs no evaluation of the functions comes first: a reference to
	// nothing makes their evaluation fail.
	static := deploycheck.CheckReferences(m, []string{"google_", "time_", "archive_"})
	// The types that only the beta provider has (versions.tf).
	static = append(static, deploycheck.CheckProvider(m, "google-beta", []string{"google_api_gateway_", "google_project_service_identity"})...)
	fns, problems, err := m.Functions()
	if err != nil {
		return nil, append(static, err)
	}
	problems = append(static, problems...)
	problems = append(problems, deploycheck.Check(fns, want(t))...)
	problems = append(problems, deploycheck.CheckWiring(m, fns, wiring)...)
	problems = append(problems, checkRuntimeIAM(m, fns)...)
	return fns, append(problems, deploycheck.CheckFirstApply(m, fns)...)
}

// TestTerraformMatchesCode: terraform/ deploys what functions.go registers,
// with the environment shared/config reads, only the API public, each
// private function invocable by exactly the service that calls it, the
// URLs pointing where they should, and what a first apply needs.
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

// TestOnlyTheGatewayInvokesTheAPI (issue 24): with the default base URL no
// function grants allUsers or allAuthenticatedUsers, and each API function
// is invocable by API Gateway's service account alone.
func TestOnlyTheGatewayInvokesTheAPI(t *testing.T) {
	fns, problems := checkModule(t, "terraform", map[string]cty.Value{"project_id": cty.StringVal("test-project")})
	for _, p := range problems {
		t.Error(p)
	}
	const gateway = "serviceAccount:orchestrator-gateway@test-project.iam.gserviceaccount.com"
	api := map[string]bool{}
	for _, ep := range want(t).Public {
		api[ep] = true
	}
	n := 0
	for _, f := range fns {
		for _, m := range f.Invokers {
			if m == "allUsers" || m == "allAuthenticatedUsers" {
				t.Errorf("%s (%s) grants roles/run.invoker to %s", f.Address, f.EntryPoint, m)
			}
		}
		if api[f.EntryPoint] {
			n++
			if len(f.Invokers) != 1 || f.Invokers[0] != gateway {
				t.Errorf("%s (%s): invokers %q, want only %s", f.Address, f.EntryPoint, f.Invokers, gateway)
			}
		}
	}
	if n != len(api) || n != 6 {
		t.Errorf("%d API functions checked, want the six of api.Functions() (%d)", n, len(api))
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
		{"api not public", "functions.tf", `(entry_point = "GetDeployment"(?s:.*?))invokers    = \["public"\]`, `${1}invokers    = []`, `GetDeployment): API function with no invoker`},
		{"allUsers granted directly", "functions.tf", `\z`, "\nresource \"google_cloud_run_v2_service_iam_member\" \"oops\" {\n  name   = google_cloudfunctions2_function.fn[\"reconcile\"].name\n  role   = \"roles/run.invoker\"\n  member = \"allUsers\"\n}\n", `Reconcile): private function granted to allUsers`},

		// Each private function is invocable by exactly the service that calls it.
		{"task handler invoked by the scheduler's account", "functions.tf", `invokers    = \["tasks"\]`, `invokers    = ["scheduler"]`, `(ProvisionTask): serviceAccount:orchestrator-scheduler@test-project.iam.gserviceaccount.com may invoke it, but only Cloud Tasks (TASKS_SERVICE_ACCOUNT) as serviceAccount:orchestrator-tasks@`},
		{"tasks sign with another account", "functions.tf", `TASKS_SERVICE_ACCOUNT = google_service_account.sa\["tasks"\].email`, `TASKS_SERVICE_ACCOUNT = google_service_account.sa["worker"].email`, `(ProvisionTask): Cloud Tasks (TASKS_SERVICE_ACCOUNT) calls it as serviceAccount:orchestrator-worker@test-project.iam.gserviceaccount.com, which has no invoker binding`},
		{"trigger runs as another account", "functions.tf", `service_account         = google_service_account.sa\["trigger"\].email`, `service_account         = google_service_account.sa["tasks"].email`, `(DeploymentChanged): google_eventarc_trigger.deployment_changed calls it as serviceAccount:orchestrator-tasks@test-project.iam.gserviceaccount.com, which has no invoker binding`},
		{"scheduler token of another account", "functions.tf", `service_account_email = google_service_account.sa\["scheduler"\].email`, `service_account_email = google_service_account.sa["tasks"].email`, `(Reconcile): google_cloud_scheduler_job.reconcile calls it as serviceAccount:orchestrator-tasks@test-project.iam.gserviceaccount.com, which has no invoker binding`},

		// The trigger: destination, filters, location.
		{"trigger delivers to Reconcile", "functions.tf", `service = google_cloudfunctions2_function.fn\["deployment_changed"\].name`, `service = google_cloudfunctions2_function.fn["reconcile"].name`, `google_eventarc_trigger.deployment_changed delivers to orchestrator-reconcile (Reconcile), not to DeploymentChanged`},
		{"trigger on another event type", "functions.tf", `"google.cloud.firestore.document.v1.written"`, `"google.cloud.firestore.document.v1.created"`, `event type "google.cloud.firestore.document.v1.created", want "google.cloud.firestore.document.v1.written"`},
		{"trigger on another collection", "functions.tf", `value     = "deployments/\{id\}"`, `value     = "runs/{id}"`, `document filter "runs/{id}"`},
		{"trigger path pattern taken literally", "functions.tf", `\n\s*operator  = "match-path-pattern"`, ``, `document filter "deployments/{id}" (operator "")`},
		{"trigger on another database", "functions.tf", `value     = google_firestore_database.default.name`, `value     = "other"`, `database filter "other" names no google_firestore_database`},
		{"trigger decodes JSON", "functions.tf", `event_data_content_type = "application/protobuf"`, `event_data_content_type = "application/json"`, `event_data_content_type "application/json", the function decodes application/protobuf`},
		{"defect 2: trigger at a multi-region", "functions.tf", `location                = local.eventarc_location`, `location                = var.firestore_location`, `location "nam5": Eventarc serves the Firestore database in "nam5" from "us-central1"`},

		// The scheduler: target and audience.
		{"scheduler calls DeploymentChanged", "functions.tf", `uri         = local.run_urls\["reconcile"\]`, `uri         = local.run_urls["deployment_changed"]`, `google_cloud_scheduler_job.reconcile calls "https://orchestrator-deployment-changed-123456789012.europe-west1.run.app", the URL of DeploymentChanged, not of Reconcile`},
		{"scheduler token for another audience", "functions.tf", `audience              = local.run_urls\["reconcile"\]`, `audience              = local.run_urls["service"]`, `OIDC audience "https://orchestrator-service-123456789012.europe-west1.run.app"`},

		// URLs in the environment.
		{"PROVISION_TASK_URL names Service", "functions.tf", `PROVISION_TASK_URL    = local.run_urls\["provision_task"\]`, `PROVISION_TASK_URL    = local.run_urls["service"]`, `PROVISION_TASK_URL is "https://orchestrator-service-123456789012.europe-west1.run.app", the URL of Service, not of ProvisionTask`},
		{"base URL is one function's", "functions.tf", `public_base_url = var.enable_load_balancer \? .*\n`, "public_base_url = local.run_urls[\"deployment_ready\"]\n", `output api_base_url is "https://orchestrator-deployment-ready-123456789012.europe-west1.run.app", neither an API Gateway's URL nor the load balancer's`},
		{"PUBLIC_BASE_URL is not the base URL", "functions.tf", `PUBLIC_BASE_URL       = local.public_base_url`, `PUBLIC_BASE_URL       = local.run_urls["deployment_ready"]`, `PUBLIC_BASE_URL is "https://orchestrator-deployment-ready-123456789012.europe-west1.run.app", not the base URL of the API`},

		// The gateway sends each operation to its function.
		{"gateway backends mixed up", "gateway.tf", `f.entry_point => local.run_urls\[k\]`, `f.entry_point => local.run_urls["service"]`, `POST /v1/deployments: sent to "https://orchestrator-service-123456789012.europe-west1.run.app", not to CreateDeployment`},
		{"gateway drops the path", "gateway-openapi.json.tftpl", `"APPEND_PATH_TO_ADDRESS"`, `"CONSTANT_ADDRESS"`, `path_translation "CONSTANT_ADDRESS"`},
		{"gateway sends no token", "gateway-openapi.json.tftpl", `"jwt_audience": "\$\{backend.Service\}"`, `"disable_auth": true`, `disable_auth: the gateway sends no ID token`},
		{"gateway token for another function", "gateway-openapi.json.tftpl", `"jwt_audience": "\$\{backend.Service\}"`, `"jwt_audience": "${backend.GetDeployment}"`, `jwt_audience "https://orchestrator-get-deployment-123456789012.europe-west1.run.app": Cloud Run accepts a token for the function's URL https://orchestrator-service-`},

		// Issue 24: only the gateway is public.
		{"API functions public again", "functions.tf", `public    = var.enable_load_balancer \? "allUsers" : google_service_account.sa\["gateway"\].member`, `public    = "allUsers"`, `allUsers may invoke it, but only google_api_gateway_api_config.api[0] as serviceAccount:orchestrator-gateway@test-project.iam.gserviceaccount.com calls it`},
		{"API invoked by another account", "functions.tf", `public    = var.enable_load_balancer \? "allUsers" : google_service_account.sa\["gateway"\].member`, `public    = var.enable_load_balancer ? "allUsers" : google_service_account.sa["api"].member`, `google_api_gateway_api_config.api[0] calls it as serviceAccount:orchestrator-gateway@test-project.iam.gserviceaccount.com, which has no invoker binding`},
		{"load balancer's functions reachable directly", "functions.tf", `"ALLOW_INTERNAL_AND_GCLB" : "ALLOW_ALL"`, `"ALLOW_ALL" : "ALLOW_ALL"`, `[load balancer] google_cloudfunctions2_function.fn["create_deployment"] (CreateDeployment): granted to allUsers with ingress "ALLOW_ALL"`},
		{"gateway without its own account", "gateway.tf", `(?s)\n  gateway_config \{.*?\n  \}\n`, "\n", `no gateway_config.backend_config.google_service_account known offline`},
		{"key read from Authorization behind the gateway", "functions.tf", `BEHIND_GATEWAY = var.enable_load_balancer \? "0" : "1"`, `BEHIND_GATEWAY = "0"`, `BEHIND_GATEWAY is "0", but API Gateway calls the functions`},
		{"forwarded key read behind the load balancer", "functions.tf", `BEHIND_GATEWAY = var.enable_load_balancer \? "0" : "1"`, `BEHIND_GATEWAY = "1"`, `[load balancer] BEHIND_GATEWAY is "1" without an API Gateway`},

		// The inference image: built, public, alone public.
		{"inference repository private", "inference.tf", `member     = "allUsers"`, `member     = "group:ops@example.com"`, `google_artifact_registry_repository.inference holds the inference image but is not readable by allUsers`},
		{"functions' images public", "functions.tf", `\z`, "\nresource \"google_artifact_registry_repository_iam_member\" \"oops\" {\n  repository = google_artifact_registry_repository.functions.name\n  role       = \"roles/artifactregistry.reader\"\n  member     = \"allUsers\"\n}\n", `google_artifact_registry_repository.functions is readable by allUsers, but only the inference image's repository may be`},
		{"inference image not built", "inference.tf", `gcloud builds submit \. `, `echo `, `no build pushes europe-west1-docker.pkg.dev/test-project/orchestrator-inference/worker:`},
		{"functions given another image", "functions.tf", `INFERENCE_IMAGE = local.inference_image`, `INFERENCE_IMAGE = "runpod/worker:latest"`, `INFERENCE_IMAGE is "runpod/worker:latest", not the image terraform builds`},

		// The defects of issue 14.
		{"defect 1: build account reads only our bucket", "iam.tf", `(?s)resource "google_project_iam_member" "build_gcf_sources" \{.*?\n\}\n`, "", `cannot read Google's gcf-v2-sources-123456789012-europe-west1 bucket, where Cloud Build reads the source`},
		{"defect 1: no wait for IAM", "functions.tf", `time_sleep.build_iam, # the build account's roles, propagated`, `google_project_iam_member.build,`, `does not wait for its build account's grant (google_project_iam_member.build_gcf_sources) to propagate`},

		// Issue 24: the build account reads two buckets, not every bucket.
		// Issue 24: the data can be restored.
		{"no point-in-time recovery", "firestore.tf", `point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"`, `point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_DISABLED"`, `google_firestore_database.default: point_in_time_recovery_enablement "POINT_IN_TIME_RECOVERY_DISABLED"`},
		{"no backup schedule", "firestore.tf", `(?s)resource "google_firestore_backup_schedule" "daily" \{.*?\n\}\n`, "", `google_firestore_database.default: no google_firestore_backup_schedule with daily_recurrence backs up database "(default)"`},
		{"weekly backups only", "firestore.tf", `daily_recurrence \{\}`, "weekly_recurrence {\n    day = \"SUNDAY\"\n  }", `google_firestore_database.default: no google_firestore_backup_schedule with daily_recurrence backs up database "(default)"`},
		{"daily backups kept past Firestore's 7 days", "firestore.tf", `retention = "\$\{min\(var.firestore_backup_retention_days, 7\) \* 86400\}s"`, `retention = "${var.firestore_backup_retention_days * 86400}s"`, `google_firestore_backup_schedule.daily: retention 1209600s: Firestore keeps a daily backup from 1 day to 7 days`},
		{"weekly backups kept past Firestore's 14 weeks", "firestore.tf", `retention = "\$\{var.firestore_backup_retention_days \* 86400\}s"`, `retention = "${var.firestore_backup_retention_days * 86400 * 10}s"`, `google_firestore_backup_schedule.weekly[0]: retention 12096000s: Firestore keeps a weekly backup from 1 day to 14 weeks`},
		{"build account reads every bucket", "iam.tf", `(?s)\n  condition \{\n    title       = "gcf-v2-sources only".*?\n  \}\n`, "\n", `may read every bucket of the project (roles/storage.objectViewer on the project, google_project_iam_member.build_gcf_sources)`},
		{"build condition names another bucket", "iam.tf", `gcf_sources_bucket = "gcf-v2-sources-\$\{data.google_project.this.number\}-\$\{var.region\}"`, `gcf_sources_bucket = "gcf-v2-sources-${data.google_project.this.number}"`, `cannot read Google's gcf-v2-sources-123456789012-europe-west1 bucket`},
		{"build account cannot read the source bucket", "iam.tf", `(?s)resource "google_storage_bucket_iam_member" "build_source" \{.*?\n\}\n`, "", `cannot read the source bucket test-project-orchestrator-source`},
		{"defect 3: key ring destroyable", "kms_secrets.tf", `(?s)(resource "google_kms_key_ring".*?)lifecycle \{\s*prevent_destroy = true\s*\}`, `${1}`, `google_kms_key_ring.this: no lifecycle prevent_destroy`},
		{"defect 3: key destroyable", "kms_secrets.tf", `(?s)(resource "google_kms_crypto_key".*?)lifecycle \{\s*prevent_destroy = true[^}]*\}`, `${1}`, `google_kms_crypto_key.secrets: no lifecycle prevent_destroy`},
		{"defect 4: URL check on uri only", "functions.tf", `contains\(svc.urls, local.run_urls\[k\]\)`, `svc.uri == local.run_urls[k]`, `no check compares the deterministic URLs with a google_cloud_run_v2_service's urls`},
		{"defect 5: Pub/Sub agent cannot mint tokens", "iam.tf", `role    = "roles/iam.serviceAccountTokenCreator"`, `role    = "roles/viewer"`, `the Pub/Sub service agent (serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com) lacks roles/iam.serviceAccountTokenCreator`},
		{"defect 6: old archives kept", "functions.tf", `retention_duration_seconds = 0`, `retention_duration_seconds = 604800`, `google_storage_bucket.source: keeps every replaced source archive`},
		{"defect 6: images in gcf-artifacts", "functions.tf", `\n\s*docker_repository = google_artifact_registry_repository.functions.id`, ``, `build_config.docker_repository unset`},
		{"defect 6: certificate replaced in place", "lb.tf", `create_before_destroy = true`, `create_before_destroy = false`, `google_compute_managed_ssl_certificate.lb[0]: no create_before_destroy`},
		{"defect 6: certificate name fixed", "lb.tf", `name = "\$\{var.name_prefix\}-lb-\$\{substr\(sha256\(var.domain\), 0, 8\)\}"`, `name = "${var.name_prefix}-lb"`, `its name does not change with the domain`},
		{"defect 6: no HTTP redirect", "lb.tf", `https_redirect         = true`, `https_redirect         = false`, `the load balancer does not redirect http:// to https://`},
		// What only Google's API refuses (issue 24): the roles each
		// runtime needs, derived from the clients the code links.
		{"reference to a resource that does not exist", "functions.tf", `TASKS_SERVICE_ACCOUNT = google_service_account.sa\["tasks"\].email`, `TASKS_SERVICE_ACCOUNT = google_service_account.tasks.email`, `references google_service_account.tasks, which no block declares`},
		{"reference to a data source that does not exist", "main.tf", `\z`, "\noutput \"oops\" {\n  value = data.google_project.other.number\n}\n", `references data.google_project.other, which no block declares`},
		{"API Gateway on the GA provider", "gateway.tf", `(resource "google_api_gateway_api" "api" \{)\n  provider = google-beta\n`, "${1}\n", `google_api_gateway_api.api: provider "", but only google-beta has this resource type`},
		{"tasks account's actAs dropped", "iam.tf", `(resource "google_service_account_iam_member" "runtime_acts_as_tasks" \{(?s:.*?))role               = "roles/iam.serviceAccountUser"`, `${1}role               = "roles/iam.serviceAccountTokenCreator"`, `its runtime account serviceAccount:orchestrator-api@test-project.iam.gserviceaccount.com has no roles/iam.serviceAccountUser on it`},
		{"datastore.user dropped", "iam.tf", `role    = "roles/datastore.user"`, `role    = "roles/datastore.viewer"`, `the code reads and writes Firestore (cloud.google.com/go/firestore), but its runtime account serviceAccount:orchestrator-api@test-project.iam.gserviceaccount.com has no roles/datastore.user`},
		{"enqueuer dropped", "iam.tf", `role     = "roles/cloudtasks.enqueuer"`, `role     = "roles/cloudtasks.viewer"`, `has no roles/cloudtasks.enqueuer`},
		{"KMS role dropped", "iam.tf", `role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"`, `role          = "roles/cloudkms.viewer"`, `has no roles/cloudkms.cryptoKeyEncrypterDecrypter`},
		{"secret accessor dropped", "iam.tf", `role      = "roles/secretmanager.secretAccessor"`, `role      = "roles/secretmanager.viewer"`, `API_KEY_HASHES comes from secret orchestrator-api-key-hashes, but its runtime account serviceAccount:orchestrator-api@test-project.iam.gserviceaccount.com has no roles/secretmanager.secretAccessor on it`},
		{"worker account loses Firestore", "iam.tf", `runtime_service_accounts = toset\(\["api", "worker"\]\)`, `runtime_service_accounts = toset(["api"])`, `runtime account serviceAccount:orchestrator-worker@test-project.iam.gserviceaccount.com has no roles/datastore.user`},
		{"defect 6: API list defers the project number", "main.tf", `depends_on = \[google_project_service.resourcemanager\]`, `depends_on = [google_project_service.api]`, `data.google_project.this depends on google_project_service.api (the API list)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyTerraform(t)
			mutate(t, filepath.Join(dir, c.file), c.from, c.to)
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

// copyTerraform copies the files of terraform/ (the configuration and the
// templates it reads) to a temporary directory.
func copyTerraform(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir("terraform")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("terraform", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(e.Name(), ".tf") {
			n++
		}
	}
	if n == 0 {
		t.Fatal("no terraform/*.tf")
	}
	return dir
}

// mutate replaces the first match of the regular expression from in the
// file at path with to (which may name from's groups, as in
// regexp.Expand); a target no longer found fails the test.
func mutate(t *testing.T, path, from, to string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(from)
	loc := re.FindSubmatchIndex(b)
	if loc == nil {
		t.Fatalf("mutation target %q not found in %s: update this test with terraform/", from, filepath.Base(path))
	}
	var out []byte
	out = append(out, b[:loc[0]]...)
	out = re.Expand(out, []byte(to), b, loc)
	out = append(out, b[loc[1]:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
