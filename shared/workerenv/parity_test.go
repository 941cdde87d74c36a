package workerenv_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
)

// The orchestrator names the worker's env here, and the worker reads it in
// inference/src/visgate_worker/config.py: the two lists are one, but for the
// names below, each with its reason.
var (
	// Set for RunPod, not read by the worker.
	setNotRead = []string{"RUNPOD_INIT_TIMEOUT"}
	// Read by the worker from the platform or an operator, not set by the
	// orchestrator.
	readNotSet = []string{"HF_HOME", "HF_ENDPOINT"}
)

func TestWorkerReadsWhatTheOrchestratorSets(t *testing.T) {
	set := goNames(t)
	read := pythonNames(t)
	var wantRead []string
	for _, n := range set {
		if !slices.Contains(setNotRead, n) {
			wantRead = append(wantRead, n)
		}
	}
	wantRead = append(wantRead, readNotSet...)
	sort.Strings(wantRead)
	if diff := cmp.Diff(wantRead, read); diff != "" {
		t.Errorf("shared/workerenv and the worker's config.py disagree (-workerenv +config.py):\n%s", diff)
	}
}

// goNames are the env names workerenv.go declares.
func goNames(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "workerenv.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	envLike := regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)
	names := []string{deployment.EndpointMarker} // DeploymentID
	ast.Inspect(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if v, err := strconv.Unquote(lit.Value); err == nil && envLike.MatchString(v) {
				names = append(names, v)
			}
		}
		return true
	})
	sort.Strings(names)
	return slices.Compact(names)
}

// pythonNames are the env names config.py reads (get("NAME"), env["NAME"]).
func pythonNames(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "inference", "src", "visgate_worker", "config.py"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?:get\(|env\[)"([A-Z][A-Z0-9_]+)"`).FindAllSubmatch(src, -1) {
		names = append(names, string(m[1]))
	}
	sort.Strings(names)
	return slices.Compact(names)
}
