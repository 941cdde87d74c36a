package orchestrator_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTools writes a terraform and a gcloud that answer scripts/deploy.sh
// the way the real ones would for project p in europe-west1, and record
// the applies in dir/applied.
func fakeTools(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/usr/bin/env bash\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("terraform", `
for a in "$@"; do
  case $a in
    init) exit 0 ;;
    console)
      case $(cat) in
        var.project_id) echo '"p"' ;;
        var.region) echo '"europe-west1"' ;;
        var.go_runtime) echo '"go126"' ;;
      esac
      exit 0 ;;
    apply) echo apply >>"$FAKE_DIR/applied"; exit 0 ;;
    output) echo https://gw.example; exit 0 ;;
  esac
done
`)
	write("gcloud", `
case "$*" in
  "auth application-default print-access-token") echo token ;;
  "services enable"*) ;;
  "functions runtimes list"*) printf '%s\n' $FAKE_RUNTIMES ;;
  "resource-manager org-policies describe iam.allowedPolicyMemberDomains"*)
    [[ -z ${FAKE_POLICY_FAILS:-} ]] || exit 1
    printf '%s\n' "$FAKE_POLICY" ;;
  "org-policies describe iam.managed.allowedPolicyMembers"*)
    [[ -n ${FAKE_MANAGED_POLICY:-} ]] || exit 1 # not set on the project
    printf '%s\n' "$FAKE_MANAGED_POLICY" ;;
  *) echo "unexpected gcloud $*" >&2; exit 2 ;;
esac
`)
	return dir
}

// TestDeployChecksBeforeApply (issue 24): scripts/deploy.sh stops with a
// sentence, before anything is applied, when the region offers no Go
// runtime of the configuration or domain-restricted sharing would refuse
// the inference image's public read access; otherwise it applies.
func TestDeployChecksBeforeApply(t *testing.T) {
	for _, tc := range []struct {
		name, runtimes, policy string
		policyFails            bool
		wantApply              bool
		wantStderr             string
		managed                string // iam.managed.allowedPolicyMembers; "": none
	}{
		{"runtime and policy fine", "go125 go126 python312", `{"constraint": "constraints/iam.allowedPolicyMemberDomains"}`, false, true, "", ""},
		{"policy allows all", "go126", `{"constraint": "constraints/iam.allowedPolicyMemberDomains", "listPolicy": {"allValues": "ALLOW"}}`, false, true, "", ""},
		{"runtime not offered", "go124 go125 nodejs22", `{}`, false, false, "Cloud Run functions offers no runtime go126 in europe-west1", ""},
		{"domain-restricted sharing", "go126", `{"constraint": "constraints/iam.allowedPolicyMemberDomains", "listPolicy": {"allowedValues": ["C01abcdef"]}}`, false, false, "iam.allowedPolicyMemberDomains (domain-restricted sharing) applies to p", ""},
		{"all members denied", "go126", `{"listPolicy": {"allValues": "DENY"}}`, false, false, "iam.allowedPolicyMemberDomains (domain-restricted sharing) applies to p", ""},
		{"policy unreadable", "go126", "", true, true, "could not read the organisation policy", ""},
		{"managed constraint without allUsers", "go126", `{}`, false, false, "iam.managed.allowedPolicyMembers is enforced on p and does not allow allUsers",
			`{"name": "projects/p/policies/iam.managed.allowedPolicyMembers", "spec": {"rules": [{"enforce": true, "parameters": {"allowedMemberSubjects": ["principalSet://goog/cloudIdentityCustomerId/C01abcdef"]}}]}}`},
		{"managed constraint allowing allUsers", "go126", `{}`, false, true, "",
			`{"spec": {"rules": [{"enforce": true, "parameters": {"allowedMemberSubjects": ["allUsers"]}}]}}`},
		{"managed constraint not enforced", "go126", `{}`, false, true, "",
			`{"spec": {"rules": [{"enforce": false}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tools := fakeTools(t)
			cmd := exec.Command("bash", "scripts/deploy.sh", "-auto-approve")
			cmd.Env = append(os.Environ(),
				"PATH="+tools+string(os.PathListSeparator)+os.Getenv("PATH"),
				"FAKE_DIR="+tools, "FAKE_RUNTIMES="+tc.runtimes, "FAKE_POLICY="+tc.policy, "FAKE_MANAGED_POLICY="+tc.managed,
				"TF_VAR_project_id=p", "TF_VAR_api_key_hashes=x", "TF_VAR_webhook_signing_key=y")
			if tc.policyFails {
				cmd.Env = append(cmd.Env, "FAKE_POLICY_FAILS=1")
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			_, statErr := os.Stat(filepath.Join(tools, "applied"))
			applied := statErr == nil
			if applied != tc.wantApply || (err == nil) != tc.wantApply {
				t.Fatalf("applied %v, err %v, want apply %v; stderr:\n%s", applied, err, tc.wantApply, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr does not say %q:\n%s", tc.wantStderr, stderr.String())
			}
		})
	}
}
