// Command testsummary reads the event stream of `go test -json` on stdin and
// prints what a plain `go test ./...` prints (one line per package, the
// output of failing tests, build errors), then a summary: how many tests
// passed, failed and were skipped, and every skipped test grouped by the
// reason it gave. `make test` pipes the Go tests through it, so that a
// skip is never silent.
//
//	go test -json ./... | go run ./scripts/testsummary -trim github.com/visgate/deployment-orchestrator/
//
// It exits 1 when a test or a build failed, or when the stream ended with
// tests still running, else 0; interrupted (Ctrl-C), it prints the summary
// of what ran, then dies of SIGINT so that the calling shell stops too.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	fs := flag.NewFlagSet("testsummary", flag.ExitOnError)
	trim := fs.String("trim", "", "prefix removed from package paths in the summary (the module path and a slash)")
	_ = fs.Parse(os.Args[1:])
	// Ctrl-C reaches the whole foreground process group: go test stops,
	// the stream ends, and the summary says what ran until then. Then die
	// of the same signal, so that the calling shell sees the interrupt too
	// and stops instead of going on with its next step.
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt)
	s, err := Summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	s.Print(os.Stdout, *trim)
	select {
	case <-interrupt:
		fmt.Println("   interrupted: the figures above are partial")
		signal.Reset(os.Interrupt)
		_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
		time.Sleep(time.Second) // the signal ends the process
		os.Exit(130)
	default:
	}
	if !s.OK() {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (see `go doc cmd/test2json`).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
	Elapsed    float64
}

// TestID names one test or subtest of a package.
type TestID struct{ Package, Test string }

// Skip is a group of tests skipped for the same reason.
type Skip struct {
	Reason string
	Tests  []TestID
}

// Summary is what the stream reported.
type Summary struct {
	Passed, Failed int
	Skipped        []Skip   // in the order each reason first appeared
	FailedBuilds   []string // import paths
	Unfinished     []TestID // started, never ended: crashed, timed out or interrupted
	Packages       int      // packages that reported a result
	FailedPackages []string
}

// OK reports whether nothing failed and nothing was left running.
func (s *Summary) OK() bool {
	return s.Failed == 0 && len(s.FailedBuilds) == 0 && len(s.Unfinished) == 0 && len(s.FailedPackages) == 0
}

// SkippedCount is the number of skipped tests.
func (s *Summary) SkippedCount() int {
	n := 0
	for _, g := range s.Skipped {
		n += len(g.Tests)
	}
	return n
}

// Summarize copies the plain output of the stream r to w as it arrives and
// returns the summary. Lines that are not JSON (go test prints some before
// the stream starts, e.g. for a bad flag) are copied as they are.
func Summarize(r io.Reader, w io.Writer) (*Summary, error) {
	s := &Summary{}
	out := map[TestID][]string{} // each running test's output, framing lines excluded
	running := map[TestID]bool{}
	var order []TestID // running tests, in start order
	skipIndex := map[string]int{}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		id := TestID{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "build-fail":
			s.FailedBuilds = append(s.FailedBuilds, e.ImportPath)
		case "run":
			if e.Test != "" && !running[id] {
				running[id] = true
				order = append(order, id)
			}
		case "output":
			if e.Test == "" {
				if e.Output != "PASS\n" {
					fmt.Fprint(w, e.Output)
				}
				continue
			}
			if !framing(e.Output) {
				out[id] = append(out[id], e.Output)
			}
		case "pass", "fail", "skip":
			if e.Test == "" {
				if e.Action != "skip" { // a package skip means "no test files"
					s.Packages++
				}
				if e.Action == "fail" {
					s.FailedPackages = append(s.FailedPackages, e.Package)
				}
				// Tests still running when their package ended: it crashed
				// or timed out. Show what they printed.
				for _, t := range order {
					if t.Package != e.Package || !running[t] {
						continue
					}
					fmt.Fprintf(w, "--- UNFINISHED: %s (%s)\n", t.Test, t.Package)
					for _, o := range out[t] {
						fmt.Fprint(w, o)
					}
					s.Unfinished = append(s.Unfinished, t)
					delete(running, t)
					delete(out, t)
				}
				continue
			}
			switch e.Action {
			case "pass":
				s.Passed++
			case "fail":
				s.Failed++
				fmt.Fprintf(w, "--- FAIL: %s (%.2fs) in %s\n", e.Test, e.Elapsed, e.Package)
				for _, o := range out[id] {
					fmt.Fprint(w, o)
				}
			case "skip":
				reason := skipReason(out[id])
				i, ok := skipIndex[reason]
				if !ok {
					i = len(s.Skipped)
					skipIndex[reason] = i
					s.Skipped = append(s.Skipped, Skip{Reason: reason})
				}
				s.Skipped[i].Tests = append(s.Skipped[i].Tests, id)
			}
			delete(out, id)
			delete(running, id)
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read the test stream: %w", err)
	}
	for _, id := range order {
		if running[id] {
			s.Unfinished = append(s.Unfinished, id)
		}
	}
	return s, nil
}

// framing reports whether a line is go test's own bookkeeping: the
// === RUN/PAUSE/CONT/NAME lines that plain output hides, and the --- lines
// that report a result (the summary prints its own for a failure).
func framing(line string) bool {
	t := strings.TrimLeft(line, " ")
	for _, p := range []string{"=== ", "--- PASS: ", "--- SKIP: ", "--- FAIL: "} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// location is the "file_test.go:12: " that t.Skip puts before its message.
var location = regexp.MustCompile(`^[\w.\-]+\.go:\d+: `)

// skipReason is what a skipped test logged, without the file and line, on
// one line.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		l = strings.TrimSpace(l)
		l = location.ReplaceAllString(l, "")
		if l != "" {
			parts = append(parts, l)
		}
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

// maxNames is how many test names the summary lists for one reason.
const maxNames = 6

// Print writes the summary; trim is removed from the front of package paths.
func (s *Summary) Print(w io.Writer, trim string) {
	short := func(id TestID) string {
		return strings.TrimPrefix(id.Package, trim) + "." + id.Test
	}
	fmt.Fprintf(w, "\n== Go tests: %d passed, %d failed, %d skipped (tests and subtests, %d packages)\n",
		s.Passed, s.Failed, s.SkippedCount(), s.Packages)
	for _, p := range s.FailedBuilds {
		fmt.Fprintf(w, "   build failed: %s\n", strings.TrimPrefix(p, trim))
	}
	if len(s.Unfinished) > 0 {
		fmt.Fprintf(w, "   %d tests never finished (interrupted, crashed or timed out), e.g. %s\n", len(s.Unfinished), short(s.Unfinished[0]))
	}
	for _, p := range s.FailedPackages {
		fmt.Fprintf(w, "   FAIL %s\n", strings.TrimPrefix(p, trim))
	}
	if len(s.Skipped) == 0 {
		return
	}
	groups := slices.Clone(s.Skipped)
	slices.SortStableFunc(groups, func(a, b Skip) int { return len(b.Tests) - len(a.Tests) })
	fmt.Fprintln(w, "   skipped, by reason:")
	for _, g := range groups {
		fmt.Fprintf(w, "   - %s\n", g.Reason)
		names := make([]string, 0, maxNames)
		for i, id := range g.Tests {
			if i == maxNames {
				names = append(names, fmt.Sprintf("and %d more", len(g.Tests)-maxNames))
				break
			}
			names = append(names, short(id))
		}
		fmt.Fprintf(w, "     %d: %s\n", len(g.Tests), strings.Join(names, ", "))
	}
}
