package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testdata/stream.jsonl is the real `go test -json ./...` of a fixture
// module: package a passes one test, skips three (one of them top-level,
// two parallel subtests) for one reason and fails a subtest; package b
// passes one and skips one for another reason; package c does not build.
func fixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/stream.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSummarizeCountsAndGroupsSkips(t *testing.T) {
	var out bytes.Buffer
	s, err := Summarize(bytes.NewReader(fixture(t)), &out)
	if err != nil {
		t.Fatal(err)
	}
	a := "example.com/fixture/a"
	want := &Summary{
		Passed: 3, Failed: 2, Packages: 3,
		// In the order each reason first appears: package b finished first.
		Skipped: []Skip{
			{"chromium not found: run scripts/install-chromium.sh", []TestID{{"example.com/fixture/b", "TestBrowser"}}},
			{"FIRESTORE_EMULATOR_HOST is not set; start it", []TestID{{a, "TestNeedsEmulator"}, {a, "TestSuite/One"}, {a, "TestSuite/Two"}}},
		},
		FailedBuilds:   []string{"example.com/fixture/c [example.com/fixture/c.test]"},
		FailedPackages: []string{a, "example.com/fixture/c"},
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if s.OK() {
		t.Error("OK() = true with failures")
	}
	if s.SkippedCount() != 4 {
		t.Errorf("SkippedCount = %d, want 4", s.SkippedCount())
	}
}

func TestSummarizePrintsWhatPlainGoTestPrints(t *testing.T) {
	var out bytes.Buffer
	if _, err := Summarize(bytes.NewReader(fixture(t)), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"c/c.go:3:23: cannot use",     // the build error
		"ok  \texample.com/fixture/b", // a package that passed
		"--- FAIL: TestFails/Sub (0.00s) in example.com/fixture/a\n    a_test.go:21: got 1, want 2\n",
		"FAIL\texample.com/fixture/a",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, hidden := range []string{"=== RUN", "--- PASS", "--- SKIP", "noise from a passing test", "PASS\n"} {
		if strings.Contains(got, hidden) {
			t.Errorf("output shows %q, which plain go test hides:\n%s", hidden, got)
		}
	}
}

func TestPrintListsEveryReason(t *testing.T) {
	s, err := Summarize(bytes.NewReader(fixture(t)), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Print(&out, "example.com/fixture/")
	want := `
== Go tests: 3 passed, 2 failed, 4 skipped (tests and subtests, 3 packages)
   build failed: c [example.com/fixture/c.test]
   FAIL a
   FAIL c
   skipped, by reason:
   - FIRESTORE_EMULATOR_HOST is not set; start it
     3: a.TestNeedsEmulator, a.TestSuite/One, a.TestSuite/Two
   - chromium not found: run scripts/install-chromium.sh
     1: b.TestBrowser
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("Print (-want +got):\n%s", diff)
	}
}

func TestPrintShortensLongGroups(t *testing.T) {
	s := &Summary{Skipped: []Skip{{Reason: "r"}}}
	for _, n := range []string{"A", "B", "C", "D", "E", "F", "G", "H"} {
		s.Skipped[0].Tests = append(s.Skipped[0].Tests, TestID{"m/p", "Test" + n})
	}
	var out bytes.Buffer
	s.Print(&out, "m/")
	if want := "8: p.TestA, p.TestB, p.TestC, p.TestD, p.TestE, p.TestF, and 2 more\n"; !strings.Contains(out.String(), want) {
		t.Errorf("Print = %q, want a line %q", out.String(), want)
	}
}

// An interrupted run ends the stream with tests still running: that is not
// a success, and the summary says so.
func TestSummarizeInterruptedRun(t *testing.T) {
	stream := fixture(t)
	i := bytes.Index(stream, []byte(`"Action":"run","Package":"example.com/fixture/a","Test":"TestFails"`))
	if i < 0 {
		t.Fatal("fixture lacks the run of TestFails")
	}
	cut := stream[:bytes.IndexByte(stream[i:], '\n')+i+1]
	s, err := Summarize(bytes.NewReader(cut), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]TestID{{"example.com/fixture/a", "TestFails"}}, s.Unfinished); diff != "" {
		t.Errorf("Unfinished (-want +got):\n%s", diff)
	}
	if s.OK() {
		t.Error("OK() = true for an interrupted run")
	}
	var out bytes.Buffer
	s.Print(&out, "example.com/fixture/")
	if !strings.Contains(out.String(), "1 tests never finished (interrupted, crashed or timed out), e.g. a.TestFails") {
		t.Errorf("Print = %q", out.String())
	}
}

func TestSummarizeCopiesLinesThatAreNotJSON(t *testing.T) {
	var out bytes.Buffer
	s, err := Summarize(strings.NewReader("go: unknown flag -bogus\n"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "go: unknown flag -bogus\n" || !s.OK() || s.Packages != 0 {
		t.Errorf("out %q, summary %+v", out.String(), s)
	}
}

func TestSkipReason(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{nil, "(no reason given)"},
		{[]string{"    storetest.go:49: FIRESTORE_EMULATOR_HOST is not set\n"}, "FIRESTORE_EMULATOR_HOST is not set"},
		{[]string{"    x_test.go:3: first\n", "    second line\n"}, "first second line"},
		{[]string{"    not-a-location: kept\n"}, "not-a-location: kept"},
	}
	for _, tt := range tests {
		if got := skipReason(tt.lines); got != tt.want {
			t.Errorf("skipReason(%q) = %q, want %q", tt.lines, got, tt.want)
		}
	}
}
