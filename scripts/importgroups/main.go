// Command importgroups checks the grouping of imports in Go files:
//
//	go run ./scripts/importgroups [-local MODULE] [DIR...]
//
// Each import block holds up to three groups, separated by a blank line and
// in this order: the standard library, other modules, then this module's own
// packages (paths under -local, by default the module named in ./go.mod).
// A group holds imports of one kind only. Files under testdata/ and vendor/,
// and nested modules (directories with their own go.mod), are skipped. It
// prints one line per misplaced import and exits 1 when there is any.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("importgroups", flag.ContinueOnError)
	flags.SetOutput(stderr)
	local := flags.String("local", "", "import path prefix of this module's packages (default: the module in ./go.mod)")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *local == "" {
		m, err := modulePath("go.mod")
		if err != nil {
			fmt.Fprintln(stderr, "importgroups:", err)
			return 2
		}
		*local = m
	}
	dirs := flags.Args()
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	bad := 0
	for _, dir := range dirs {
		problems, err := checkTree(dir, *local)
		if err != nil {
			fmt.Fprintln(stderr, "importgroups:", err)
			return 2
		}
		for _, p := range problems {
			fmt.Fprintln(stdout, p)
		}
		bad += len(problems)
	}
	if bad > 0 {
		return 1
	}
	return 0
}

// modulePath reads the module path from a go.mod file.
func modulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", fmt.Errorf("read module path: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", gomod, err)
	}
	return "", errors.New(gomod + " names no module")
}

// checkTree checks every .go file under root that belongs to root's module.
func checkTree(root, local string) ([]string, error) {
	var problems []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		p, err := checkFile(path, src, local)
		if err != nil {
			return err
		}
		problems = append(problems, p...)
		return nil
	})
	return problems, err
}

// kind orders the groups of an import block.
type kind int

const (
	kindStd kind = iota
	kindOther
	kindLocal
)

func (k kind) String() string {
	return [...]string{"standard library", "other modules", "this module"}[k]
}

func kindOf(path, local string) kind {
	switch {
	case path == local || strings.HasPrefix(path, local+"/"):
		return kindLocal
	case !strings.Contains(strings.SplitN(path, "/", 2)[0], "."):
		return kindStd // the standard library's first element has no dot
	}
	return kindOther
}

// checkFile reports every import of src that is in a group of another kind,
// or in a group that comes after a group of a later kind.
func checkFile(name string, src []byte, local string) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	var problems []string
	prevLine, groupKind := -2, kind(-1)
	last := kind(-1) // the kind of the latest finished group
	for _, spec := range f.Imports {
		path, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: bad import path %s", name, spec.Path.Value)
		}
		pos := fset.Position(spec.Pos())
		line := pos.Line
		if spec.Doc != nil {
			line = fset.Position(spec.Doc.Pos()).Line
		}
		groupStart := line > prevLine+1
		prevLine = fset.Position(spec.End()).Line
		k := kindOf(path, local)
		if groupStart {
			if groupKind >= 0 {
				last = max(last, groupKind)
			}
			groupKind = k
			if k < last {
				problems = append(problems, fmt.Sprintf("%s:%d: %q (%s) comes after a group of %s", pos.Filename, pos.Line, path, k, last))
			}
			continue
		}
		if k != groupKind {
			problems = append(problems, fmt.Sprintf("%s:%d: %q (%s) is in a group of %s", pos.Filename, pos.Line, path, k, groupKind))
		}
	}
	return problems, nil
}
