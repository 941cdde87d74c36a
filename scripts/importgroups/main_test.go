package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const local = "example.com/mod"

func TestCheckFile(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of each problem, in order
	}{
		{name: "three groups in order", src: `package p
import (
	"fmt"
	"net/http"

	"github.com/google/go-cmp/cmp"

	"example.com/mod/shared/a"
)`},
		{name: "std and local only", src: `package p
import (
	"fmt"

	"example.com/mod/shared/a"
	b "example.com/mod/shared/b"
)`},
		{name: "single import", src: `package p
import "example.com/mod/shared/a"`},
		{name: "no imports", src: `package p`},
		{name: "local import among the standard library", src: `package p
import (
	"errors"
	"example.com/mod/functions/provision"
	"net/http"
)`, want: []string{`"example.com/mod/functions/provision" (this module) is in a group of standard library`}},
		{name: "third party in the std group", src: `package p
import (
	"context"
	"cloud.google.com/go/firestore"
)`, want: []string{`"cloud.google.com/go/firestore" (other modules) is in a group of standard library`}},
		{name: "std group after other modules", src: `package p
import (
	"github.com/google/go-cmp/cmp"

	"fmt"
)`, want: []string{`"fmt" (standard library) comes after a group of other modules`}},
		{name: "other modules after this module", src: `package p
import (
	"fmt"

	"example.com/mod/shared/a"

	"github.com/google/go-cmp/cmp"
)`, want: []string{`"github.com/google/go-cmp/cmp" (other modules) comes after a group of this module`}},
		{name: "a commented import keeps its group", src: `package p
import (
	"fmt"

	// cmp compares.
	"github.com/google/go-cmp/cmp"
)`},
		{name: "module path prefix is not enough", src: `package p
import (
	"fmt"

	"example.com/modx/a"
)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := checkFile("x.go", []byte(tc.src), local)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems = %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestRealMainTree(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/mod\n\ngo 1.26\n")
	write("good/good.go", "package good\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/mod/a\"\n)\n")
	write("bad/bad.go", "package bad\n\nimport (\n\t\"fmt\"\n\t\"example.com/mod/a\"\n)\n")
	write("testdata/skip.go", "package skip\n\nimport (\n\t\"fmt\"\n\t\"example.com/mod/a\"\n)\n")
	write("nested/go.mod", "module example.com/other\n")
	write("nested/x.go", "package x\n\nimport (\n\t\"fmt\"\n\t\"example.com/mod/a\"\n)\n")
	t.Chdir(dir)

	var stdout, stderr bytes.Buffer
	code := realMain(nil, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit code = %d, want 1 (stderr %q)", code, stderr.String())
	}
	want := filepath.Join("bad", "bad.go") + `:5: "example.com/mod/a" (this module) is in a group of standard library` + "\n"
	if diff := cmp.Diff(want, stdout.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}

	if err := os.Remove(filepath.Join(dir, "bad", "bad.go")); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if code := realMain(nil, &stdout, &stderr); code != 0 || stdout.Len() != 0 {
		t.Errorf("clean tree: exit %d, output %q; want 0 and nothing", code, stdout.String())
	}
}
