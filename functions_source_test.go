package orchestrator_test

import (
	"encoding/json"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/deploycheck"
)

// globMatch matches a slash-separated path against a doublestar pattern as
// the archive provider does (bmatcuk/doublestar: `*` within a segment,
// `**` as a whole segment for zero or more segments).
func globMatch(pattern, name string) bool {
	return matchSegments(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegments(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(name); i++ {
			if matchSegments(pat[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	ok, err := path.Match(pat[0], name[0])
	return err == nil && ok && matchSegments(pat[1:], name[1:])
}

// archived tells whether the source archive keeps a file: neither it nor a
// directory above it matches an exclude (a matching directory is skipped
// whole).
func archived(excludes []string, rel string) bool {
	parts := strings.Split(rel, "/")
	for i := 1; i <= len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		for _, ex := range excludes {
			if globMatch(ex, p) {
				return false
			}
		}
	}
	return true
}

// TestSourceArchiveHoldsTheBuildAndNothingElse: the functions' source
// archive (terraform/functions.tf, local.source_excludes) keeps every file
// the Go build of the root package needs, and leaves out tests, docs,
// scripts, terraform and the inference worker, so that editing them does
// not redeploy the functions.
func TestSourceArchiveHoldsTheBuildAndNothingElse(t *testing.T) {
	m, err := deploycheck.Load("terraform")
	if err != nil {
		t.Fatal(err)
	}
	v := m.Local("source_excludes")
	if v.IsNull() || !v.IsWhollyKnown() || !v.CanIterateElements() {
		t.Fatalf("local.source_excludes is not a known list: %#v", v)
	}
	var excludes []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		excludes = append(excludes, e.AsString())
	}

	out, err := exec.Command("go", "list", "-deps", "-json", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			Dir                                           string
			Standard                                      bool
			Module                                        *struct{ Main bool }
			GoFiles, CgoFiles, SFiles, HFiles, EmbedFiles []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Standard || p.Module == nil || !p.Module.Main {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, list := range [][]string{p.GoFiles, p.CgoFiles, p.SFiles, p.HFiles, p.EmbedFiles} {
			for _, f := range list {
				needed = append(needed, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, f := range needed {
		if !archived(excludes, f) {
			t.Errorf("the source archive leaves out %s, which the functions' build needs", f)
		}
	}
	for _, f := range []string{
		"README.md", "docs/api.md", "Makefile", "functions_terraform_test.go", "functions/api/api_test.go",
		"shared/huggingface/hubsim/testdata/x.json", "shared/store/firestore/INDEXES.md",
		"scripts/quick-test.sh", "terraform/main.tf", "inference/Dockerfile", "inference/worker/handler.py",
		"tools/go.mod", ".ci/run", "functions/local/main.go", ".git/HEAD",
	} {
		if archived(excludes, f) {
			t.Errorf("the source archive keeps %s: editing it would redeploy every function", f)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"**/*_test.go", "a_test.go", true},
		{"**/*_test.go", "functions/api/api_test.go", true},
		{"**/*_test.go", "functions/api/api.go", false},
		{"**/testdata", "shared/x/testdata", true},
		{"scripts", "scripts", true},
		{"scripts", "shared/scripts", false},
		{"*.md", "docs/a.md", false},
	} {
		if got := globMatch(c.pattern, c.name); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}
