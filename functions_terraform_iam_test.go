package orchestrator_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/deploycheck"
)

// clientRoles maps each Google client package to the IAM role that an
// account calling it needs, and the resource type that grants it in
// terraform/. Which of them a function needs is not listed here: it is
// derived from the packages the deployed code links (go list -deps).
var clientRoles = []struct {
	pkg, role, grantType, what string
}{
	{"cloud.google.com/go/firestore", "roles/datastore.user", "google_project_iam_member", "reads and writes Firestore"},
	{"cloud.google.com/go/cloudtasks/apiv2", "roles/cloudtasks.enqueuer", "google_cloud_tasks_queue_iam_member", "creates Cloud Tasks"},
	{"cloud.google.com/go/kms/apiv1", "roles/cloudkms.cryptoKeyEncrypterDecrypter", "google_kms_crypto_key_iam_member", "seals and opens secrets with Cloud KMS"},
	{"cloud.google.com/go/secretmanager/apiv1", secretAccessorRole, "google_secret_manager_secret_iam_member", "reads Secret Manager"},
}

// secretAccessorRole lets an account read a secret's versions: Cloud Run
// reads a function's secret environment variables as its runtime account.
const secretAccessorRole = "roles/secretmanager.secretAccessor"

// actAsRole lets an account attach another account's OIDC token to the
// tasks it creates (iam.serviceAccounts.actAs on that account).
const actAsRole = "roles/iam.serviceAccountUser"

// deployedNeeds is what the deployed code calls: the client packages of
// clientRoles it links, and whether it attaches an OIDC token to tasks.
type deployedNeeds struct {
	pkgs      map[string]bool
	oidcToken bool
}

var (
	needsOnce sync.Once
	needs     deployedNeeds
	needsErr  error
)

// codeNeeds lists the dependencies of the root package (the one Cloud Run
// functions builds: every entry point is registered there) and reads the
// module's own non-test files among them for an OIDC token on a task.
func codeNeeds() (deployedNeeds, error) {
	needsOnce.Do(func() {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}\t{{.Module}}\t{{.Dir}}\t{{join .GoFiles \" \"}}", ".").Output()
		if err != nil {
			needsErr = fmt.Errorf("go list -deps .: %w", err)
			return
		}
		mod, err := exec.Command("go", "list", "-m").Output()
		if err != nil {
			needsErr = fmt.Errorf("go list -m: %w", err)
			return
		}
		module := strings.TrimSpace(string(mod))
		needs = deployedNeeds{pkgs: map[string]bool{}}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Split(sc.Text(), "\t")
			if len(f) != 4 {
				continue
			}
			needs.pkgs[f[0]] = true
			if !strings.HasPrefix(f[1], module) {
				continue
			}
			for _, name := range strings.Fields(f[3]) {
				b, err := os.ReadFile(filepath.Join(f[2], name))
				if err != nil {
					needsErr = err
					return
				}
				if bytes.Contains(b, []byte("cloudtaskspb.OidcToken")) {
					needs.oidcToken = true
				}
			}
		}
	})
	return needs, needsErr
}

// checkRuntimeIAM checks that each function's runtime account holds the role
// of every client the deployed code calls, and actAs on the account whose
// token its tasks carry: what only Google's API would refuse, at the first
// call, with a 403.
func checkRuntimeIAM(m *deploycheck.Module, fns []*deploycheck.Function) []error {
	n, err := codeNeeds()
	if err != nil {
		return []error{err}
	}
	// grants[type][member][role] lists the instances granting it, and for
	// actAs the service_account_id it is granted on.
	grants := map[string]map[string]map[string][]string{}
	types := []string{"google_service_account_iam_member"}
	for _, c := range clientRoles {
		types = append(types, c.grantType)
	}
	var problems []error
	for _, typ := range types {
		insts, err := m.Instances(typ)
		if err != nil {
			return []error{err}
		}
		for _, in := range insts {
			role, _, _ := deploycheck.Attr(in.Body, in.Ctx, "role")
			member, _, _ := deploycheck.Attr(in.Body, in.Ctx, "member")
			r, ok1 := deploycheck.KnownString(role)
			mem, ok2 := deploycheck.KnownString(member)
			if !ok1 || !ok2 {
				continue
			}
			on := in.Address()
			switch typ {
			case "google_service_account_iam_member":
				id, _, _ := deploycheck.Attr(in.Body, in.Ctx, "service_account_id")
				on, _ = deploycheck.KnownString(id)
			case "google_secret_manager_secret_iam_member":
				id, _, _ := deploycheck.Attr(in.Body, in.Ctx, "secret_id")
				on, _ = deploycheck.KnownString(id)
			}
			if grants[typ] == nil {
				grants[typ] = map[string]map[string][]string{}
			}
			if grants[typ][mem] == nil {
				grants[typ][mem] = map[string][]string{}
			}
			grants[typ][mem][r] = append(grants[typ][mem][r], on)
		}
	}
	insts, err := m.Instances(deploycheck.FunctionType)
	if err != nil {
		return []error{err}
	}
	byAddr := map[string]deploycheck.Instance{}
	for _, in := range insts {
		byAddr[in.Address()] = in
	}
	for _, f := range fns {
		in, ok := byAddr[f.Address]
		if !ok {
			continue
		}
		v, ok, err := deploycheck.Nested(in.Body, in.Ctx, "service_config", "service_account_email")
		email, known := deploycheck.KnownString(v)
		if err != nil || !ok || !known {
			problems = append(problems, fmt.Errorf("%s (%s): runtime service_account_email not set or not known offline: it would run as the default compute account", f.Address, f.EntryPoint))
			continue
		}
		member := "serviceAccount:" + email
		for _, c := range clientRoles {
			if !n.pkgs[c.pkg] {
				continue
			}
			if len(grants[c.grantType][member][c.role]) == 0 {
				problems = append(problems, fmt.Errorf("%s (%s): the code %s (%s), but its runtime account %s has no %s granted by a %s", f.Address, f.EntryPoint, c.what, c.pkg, member, c.role, c.grantType))
			}
		}
		problems = append(problems, secretAccess(in, f, member, grants["google_secret_manager_secret_iam_member"][member][secretAccessorRole])...)
		if n.oidcToken && n.pkgs["cloud.google.com/go/cloudtasks/apiv2"] {
			tasksAccount, ok := deploycheck.KnownString(f.EnvValues[wiring.TaskAccountEnv])
			if !ok {
				problems = append(problems, fmt.Errorf("%s (%s): %s not known offline: cannot check actAs on it", f.Address, f.EntryPoint, wiring.TaskAccountEnv))
				continue
			}
			found := false
			for _, on := range grants["google_service_account_iam_member"][member][actAsRole] {
				found = found || strings.HasSuffix(on, "/"+tasksAccount)
			}
			if !found {
				problems = append(problems, fmt.Errorf("%s (%s): the code attaches %s's OIDC token to the tasks it creates, but its runtime account %s has no %s on it: every task creation would get 403", f.Address, f.EntryPoint, tasksAccount, member, actAsRole))
			}
		}
	}
	return problems
}

// secretAccess checks that the runtime account may read every secret the
// function's environment takes from Secret Manager (granted lists the
// secret ids it may read): Cloud Run reads them as that account when it
// starts a revision, and refuses the deployment otherwise.
func secretAccess(in deploycheck.Instance, f *deploycheck.Function, member string, granted []string) []error {
	cfgs, err := deploycheck.Blocks(in.Body, in.Ctx, "service_config")
	if err != nil || len(cfgs) != 1 {
		return nil // Functions() reports a function without one service_config
	}
	secrets, err := deploycheck.Blocks(cfgs[0].Body, cfgs[0].Ctx, "secret_environment_variables")
	if err != nil {
		return []error{fmt.Errorf("%s (%s): secret_environment_variables: %w", f.Address, f.EntryPoint, err)}
	}
	var problems []error
	for _, b := range secrets {
		key, _, _ := deploycheck.Attr(b.Body, b.Ctx, "key")
		secret, _, _ := deploycheck.Attr(b.Body, b.Ctx, "secret")
		k, _ := deploycheck.KnownString(key)
		id, ok := deploycheck.KnownString(secret)
		if !ok {
			problems = append(problems, fmt.Errorf("%s (%s): the secret of %s is not known offline", f.Address, f.EntryPoint, k))
			continue
		}
		found := false
		for _, g := range granted {
			found = found || g == id || strings.HasSuffix(g, "/secrets/"+id)
		}
		if !found {
			problems = append(problems, fmt.Errorf("%s (%s): %s comes from secret %s, but its runtime account %s has no %s on it", f.Address, f.EntryPoint, k, id, member, secretAccessorRole))
		}
	}
	return problems
}

// TestCodeNeedsClients: the derivation sees the clients the code calls
// today, so checkRuntimeIAM is not vacuous.
func TestCodeNeedsClients(t *testing.T) {
	n, err := codeNeeds()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range clientRoles {
		if n.pkgs[c.pkg] {
			got = append(got, c.pkg)
		}
	}
	sort.Strings(got)
	for _, want := range []string{"cloud.google.com/go/cloudtasks/apiv2", "cloud.google.com/go/firestore", "cloud.google.com/go/kms/apiv1"} {
		if !n.pkgs[want] {
			t.Errorf("the deployed code no longer links %s (it links %v): update TestCodeNeedsClients", want, got)
		}
	}
	if !n.oidcToken {
		t.Error("no cloudtaskspb.OidcToken in the deployed code: the tasks carry no token, or the detection is stale")
	}
}
