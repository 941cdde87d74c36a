package orchestrator_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// readmeMaxLines is the README's budget: what a newcomer needs in the first
// minutes, everything else in docs/.
const readmeMaxLines = 250

// docPages are the documentation pages: the README, the generated
// BENCHMARKS.md and every page in docs/.
func docPages(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("docs/ holds no page")
	}
	return append([]string{"README.md", "BENCHMARKS.md"}, pages...)
}

// markdown is a page read for its links, headings and code.
type markdown struct {
	prose    string   // the text outside fenced blocks, code spans removed
	spans    []string // the code spans' contents
	fenced   []string // the lines of the fenced blocks
	headings []string // the headings' text, in order
}

var (
	codeSpan = regexp.MustCompile("`([^`]*)`")
	link     = regexp.MustCompile(`\[([^\]]*)\]\(([^)\s]*)\)`)
)

func readMarkdown(t *testing.T, path string) markdown {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var md markdown
	var text strings.Builder
	inFence := false
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			md.fenced = append(md.fenced, line)
			continue
		}
		if h, ok := heading(line); ok {
			md.headings = append(md.headings, h)
		}
		text.WriteString(line)
		text.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if inFence {
		t.Errorf("%s: a fenced block is never closed", path)
	}
	for _, m := range codeSpan.FindAllStringSubmatch(text.String(), -1) {
		md.spans = append(md.spans, m[1])
	}
	md.prose = codeSpan.ReplaceAllString(text.String(), "code")
	return md
}

// heading returns the text of an ATX heading line.
func heading(line string) (string, bool) {
	level := len(line) - len(strings.TrimLeft(line, "#"))
	if level < 1 || level > 6 || !strings.HasPrefix(line[level:], " ") {
		return "", false
	}
	return strings.TrimSpace(line[level:]), true
}

// anchors returns the fragment GitHub gives each heading: lower case,
// inline markup and punctuation dropped (hyphens and underscores kept),
// spaces as hyphens, and -1, -2... on repeats.
func anchors(headings []string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, h := range headings {
		h = link.ReplaceAllString(h, "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			seen[slug] = n + 1
			slug = fmt.Sprintf("%s-%d", slug, n)
		} else {
			seen[slug] = 1
		}
		out[slug] = true
	}
	return out
}

func TestAnchors(t *testing.T) {
	got := anchors([]string{
		"After `ready`: call your model", "Backup and recovery (embedded runtime)",
		"Quickstart: a first deployment, step by step", "What `make test` does", "Steps", "Steps",
		"A [link](x.md) here", "Make targets",
	})
	for _, want := range []string{
		"after-ready-call-your-model", "backup-and-recovery-embedded-runtime",
		"quickstart-a-first-deployment-step-by-step", "what-make-test-does", "steps", "steps-1",
		"a-link-here", "make-targets",
	} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
}

// TestDocsLinksResolve: every relative link of every page names a file that
// exists, and every #fragment a heading of the page it points to.
func TestDocsLinksResolve(t *testing.T) {
	parsed := map[string]markdown{}
	read := func(path string) markdown {
		if md, ok := parsed[path]; ok {
			return md
		}
		md := readMarkdown(t, path)
		parsed[path] = md
		return md
	}
	checked := 0
	for _, page := range docPages(t) {
		for _, m := range link.FindAllStringSubmatch(read(page).prose, -1) {
			target := m[2]
			if strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "http://") {
				continue
			}
			checked++
			file, frag, _ := strings.Cut(target, "#")
			dest := page
			if file != "" {
				dest = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: the link [%s](%s) names %s, which does not exist", page, m[1], target, dest)
					continue
				}
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s: the link [%s](%s) has a fragment on a file that is not a page", page, m[1], target)
				continue
			}
			if !anchors(read(dest).headings)[frag] {
				t.Errorf("%s: the link [%s](%s): %s has no heading #%s", page, m[1], target, dest, frag)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links found: is the link pattern still right?", checked)
	}
}

// TestREADMEIsShortAndLinksEveryPage: the README stays within its budget and
// is the way in to every page of docs/.
func TestREADMEIsShortAndLinksEveryPage(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n > readmeMaxLines {
		t.Errorf("README.md has %d lines, over its budget of %d: move the detail to the docs/ page for its audience", n, readmeMaxLines)
	}
	linked := map[string]bool{}
	for _, m := range link.FindAllStringSubmatch(readMarkdown(t, "README.md").prose, -1) {
		file, _, _ := strings.Cut(m[2], "#")
		linked[filepath.Clean(file)] = true
	}
	for _, page := range docPages(t)[1:] {
		if !linked[page] {
			t.Errorf("README.md does not link %s", page)
		}
	}
}

// TestDocsNameWhatExists: the make targets, repository paths and Go tests
// the pages name in code exist, so that a command copied from them runs.
func TestDocsNameWhatExists(t *testing.T) {
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z-]*):`).FindAllStringSubmatch(string(makefile), -1) {
		targets[m[1]] = true
	}
	tests := goTestNames(t)
	testList := slices.Collect(maps.Keys(tests))

	makeCmd := regexp.MustCompile(`\bmake (?:-s )?([a-z][a-z-]*)`)
	repoPath := regexp.MustCompile(`^(?:cmd|docs|functions|inference|scripts|shared|terraform|tools)/[A-Za-z0-9_./-]*$`)
	testName := regexp.MustCompile(`^(?:Test|Fuzz)[A-Z][A-Za-z0-9]*$`)
	goCmd := regexp.MustCompile(`\bgo (?:test|run|build|install)\b[^#;)]*`)
	goPkg := regexp.MustCompile(`(?:^|\s)\./[A-Za-z0-9_./-]+`)
	script := regexp.MustCompile(`\b(?:scripts|inference/tools)/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*`)
	runFlag := regexp.MustCompile(`-run '?([^' ]+)'?`)
	var paths, names, cmds int
	for _, page := range docPages(t) {
		md := readMarkdown(t, page)
		code := append(slices.Clone(md.spans), md.fenced...)
		for _, c := range code {
			for _, m := range makeCmd.FindAllStringSubmatch(c, -1) {
				cmds++
				if !targets[m[1]] {
					t.Errorf("%s: `make %s` names no target of the Makefile", page, m[1])
				}
			}
			for _, m := range goCmd.FindAllStringSubmatch(c, -1) {
				cmds++
				for _, pkg := range goPkg.FindAllString(m[0], -1) {
					pkg = strings.TrimSpace(pkg)
					if _, err := os.Stat(filepath.FromSlash(strings.TrimSuffix(pkg, "/"))); err != nil {
						t.Errorf("%s: `%s` names the package %s, which does not exist", page, m[0], pkg)
					}
				}
				if r := runFlag.FindStringSubmatch(m[0]); r != nil {
					for _, alt := range strings.Split(r[1], "|") {
						alt = strings.Trim(alt, "^$")
						if alt != "" && !slices.ContainsFunc(testList, func(n string) bool { return strings.HasPrefix(n, alt) }) {
							t.Errorf("%s: `%s` runs %s, which no test's name starts with", page, m[0], alt)
						}
					}
				}
			}
		}
		for _, line := range md.fenced {
			for _, s := range script.FindAllString(line, -1) {
				paths++
				if _, err := os.Stat(filepath.FromSlash(s)); err != nil {
					t.Errorf("%s: the command %q runs %s, which does not exist", page, strings.TrimSpace(line), s)
				}
			}
		}
		for _, s := range md.spans {
			s = strings.TrimSpace(s)
			switch {
			case repoPath.MatchString(s) && !strings.Contains(s, "..."):
				paths++
				if _, err := os.Stat(filepath.FromSlash(strings.TrimSuffix(s, "/"))); err != nil {
					t.Errorf("%s: `%s` does not exist", page, s)
				}
			case testName.MatchString(s):
				names++
				if !tests[s] {
					t.Errorf("%s: `%s` is no test of this repository", page, s)
				}
			}
		}
	}
	if paths < 20 || names < 10 || cmds < 20 {
		t.Errorf("found only %d paths, %d test names and %d make commands: are the patterns still right?", paths, names, cmds)
	}
}

// goTestNames returns the Test and Fuzz functions of every Go test file.
func goTestNames(t *testing.T) map[string]bool {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)[A-Za-z0-9_]*)\(`)
	names := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestSourcesCiteDocsThatExist: a comment, message or help text that sends
// the reader to docs/PAGE.md names a page that exists, and a section it
// quotes ("...") is on that page. Tests are left out: their paths are data.
func TestSourcesCiteDocsThatExist(t *testing.T) {
	cite := regexp.MustCompile(`docs/([a-z-]+\.md)(?:, \\?"([^"\\]+)\\?")?`)
	exts := []string{".go", ".tf", ".sh", ".py", ".toml", ".example", ".tftpl", ".yaml", ".yml"}
	pages := map[string]string{}
	cites := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata" || d.Name() == "docs") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() != "Makefile" && !slices.Contains(exts, filepath.Ext(path)) || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range cite.FindAllStringSubmatch(string(b), -1) {
			cites++
			page, ok := pages[m[1]]
			if !ok {
				p, err := os.ReadFile(filepath.Join("docs", m[1]))
				if err != nil {
					t.Errorf("%s cites docs/%s, which does not exist", path, m[1])
					continue
				}
				page = string(p)
				pages[m[1]] = page
			}
			if m[2] != "" && !strings.Contains(page, m[2]) {
				t.Errorf("%s cites the section %q of docs/%s, which has no such text", path, m[2], m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if cites < 10 {
		t.Errorf("only %d citations of docs/ found: is the pattern still right?", cites)
	}
}
