package orchestrator

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeRunHonoursTheWorkerEnv: `make run` gives the server the worker's
// environment from scripts/inference-env.sh when it exists, but a
// VISGATE_TINY_MODELS or VISGATE_INFERENCE_VENV the user set wins. GO is a
// stand-in that prints what the server would get.
func TestMakeRunHonoursTheWorkerEnv(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	sum := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		return hex.EncodeToString(s[:])
	}
	// A worker environment as inference-env.sh leaves it, in a cache of
	// the test's own.
	cache := t.TempDir()
	base := filepath.Join(cache, "visgate-orchestrator", "inference-"+sum("inference/requirements.lock")[:12])
	generator := sum("inference/tools/make_tiny_models.py")
	venv, tiny := filepath.Join(base, "venv"), filepath.Join(base, "tiny-models-"+generator[:12])
	for path, content := range map[string]string{
		filepath.Join(venv, ".visgate-complete"):  "",
		filepath.Join(venv, "bin", "python"):      "#!/bin/sh\n",
		filepath.Join(tiny, ".visgate-generator"): generator + "\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fakeGo := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(fakeGo, []byte("#!/bin/sh\necho \"venv=$VISGATE_INFERENCE_VENV tiny=$VISGATE_TINY_MODELS args=$*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"the worker's environment", nil, "venv=" + venv + " tiny=" + tiny},
		{"the user's tiny models", []string{"VISGATE_TINY_MODELS=/my/tiny"}, "venv=" + venv + " tiny=/my/tiny"},
		{"the user's venv and tiny models", []string{"VISGATE_TINY_MODELS=/my/tiny", "VISGATE_INFERENCE_VENV=/my/venv"},
			"venv=/my/venv tiny=/my/tiny"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("make", "-s", "run", "GO="+fakeGo)
			cmd.Env = append(withoutWorkerEnv(os.Environ()), append([]string{"XDG_CACHE_HOME=" + cache}, tc.env...)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make run: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want+" args=run ./functions/local" {
				t.Errorf("make run gave the server %q, want %q", got, tc.want)
			}
		})
	}
}

func withoutWorkerEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "VISGATE_TINY_MODELS=") && !strings.HasPrefix(kv, "VISGATE_INFERENCE_VENV=") &&
			!strings.HasPrefix(kv, "XDG_CACHE_HOME=") && !strings.HasPrefix(kv, "MAKEFLAGS=") && !strings.HasPrefix(kv, "MAKELEVEL=") {
			out = append(out, kv)
		}
	}
	return out
}
