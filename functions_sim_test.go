package orchestrator

import (
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestDeployedFunctionsLinkNoSimulator: what Cloud Run builds (this package)
// contains neither simulator nor its fixtures; only the local commands do.
func TestDeployedFunctionsLinkNoSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps .: %v\n%s", err, out)
	}
	for _, sim := range []string{"/shared/huggingface/hubsim", "/shared/runpod/runpodsim", "/functions/localsim"} {
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasSuffix(dep, sim) {
				t.Errorf("the deployed package depends on %s", dep)
			}
		}
	}
}

// TestDeployedFunctionRefusesSimulate: SIMULATE on a deployed function is a
// configuration error at start, not a switch to fakes.
func TestDeployedFunctionRefusesSimulate(t *testing.T) {
	env := map[string]string{"SIMULATE": "1", "DATA_DIR": t.TempDir()}
	a, err := wire(t.Context(), func(k string) string { return env[k] }, io.Discard)
	if !errors.Is(err, ErrSimulate) || a != nil {
		t.Fatalf("wire with SIMULATE=1 = %v, %v; want ErrSimulate", a, err)
	}
}
