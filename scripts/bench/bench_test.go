package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTableAlignsAndMarksMissingTargets(t *testing.T) {
	got := table([]Figure{
		{Name: "cold start", Measured: "27 ms", Target: "< 100 ms", Holds: holds(true)},
		{Name: "peak RSS", Measured: "225 MB", Target: "< 200 MB", Holds: holds(false)},
		{Name: "worker", Measured: "not measured"},
	})
	want := `| figure     | measured     | target   | holds |
| ---------- | ------------ | -------- | ----- |
| cold start | 27 ms        | < 100 ms | yes   |
| peak RSS   | 225 MB       | < 200 MB | no    |
| worker     | not measured | –        | –     |
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestReportNamesTheMachineAndWhatMissed(t *testing.T) {
	var b strings.Builder
	m := Machine{Date: time.Date(2026, 12, 1, 20, 5, 0, 0, time.UTC), Cores: 2, MemoryGB: 23.5, CPU: "cpu", Go: "go1.26.8", Commit: "abc123", Load: [2]string{"1.5", "2.0"}}
	writeReport(&b, m, []Figure{
		{Name: "a", Measured: "1", Target: "t", Holds: "yes"},
		{Name: "b", Measured: "2", Target: "t", Holds: "no"},
	}, []string{"a note"}, 90*time.Second)
	for _, want := range []string{"2026-12-01 20:05 UTC", "2 cores", "23.5 GB", "go1.26.8", "abc123", "took 1m30s", "load average of 1.5", "- a note", "Missed: b."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestStatusKB(t *testing.T) {
	status := "Name:\tserver\nVmHWM:\t  181228 kB\nVmRSS:\t  150000 kB\nOdd:\t12 pages\n"
	tests := []struct {
		name    string
		want    int64
		wantErr bool
	}{
		{"VmHWM", 181228 * 1024, false},
		{"VmRSS", 150000 * 1024, false},
		{"Odd", 0, true},
		{"Missing", 0, true},
	}
	for _, tt := range tests {
		got, err := statusKB(status, tt.name)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("statusKB(%s) = %d, %v; want %d, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMsAndPercentile(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond: "1.50 ms", 27 * time.Millisecond: "27 ms", 2500 * time.Millisecond: "2.50 s",
	} {
		if got := ms(d); got != want {
			t.Errorf("ms(%s) = %q, want %q", d, got, want)
		}
	}
	ds := []time.Duration{5, 1, 4, 2, 3}
	if p50, p100 := percentile(ds, 0.5), percentile(ds, 1); p50 != 3 || p100 != 5 {
		t.Errorf("percentile: p50 %d, max %d", p50, p100)
	}
	if got := medianFloat([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("medianFloat = %v", got)
	}
}

func TestCleanEnvDropsTheServicesVariables(t *testing.T) {
	t.Setenv("BACKEND", "gcp")
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
	t.Setenv("BENCH_TEST_KEEP", "1")
	env := strings.Join(cleanEnv(), "\n")
	if strings.Contains(env, "BACKEND=") || strings.Contains(env, "FIRESTORE_EMULATOR_HOST=") || !strings.Contains(env, "BENCH_TEST_KEEP=1") {
		t.Errorf("cleanEnv kept a variable of the service, or dropped another:\n%s", env)
	}
}

func TestFreePortsAreConsecutiveAndFree(t *testing.T) {
	base, err := freePorts(9)
	if err != nil {
		t.Fatal(err)
	}
	for p := base; p < base+9; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d of %d..%d is taken: %v", p, base, base+8, err)
		}
		defer ln.Close()
	}
}

func TestWorkerLogReadsTheStartAndTheReadyReport(t *testing.T) {
	log := `{"time":"2026-12-01T20:55:01.43Z","severity":"INFO","message":"listening"}
{"time":"2026-12-01T20:55:03.449299292Z","severity":"INFO","message":"inference worker","line":"[runpodsim other/w1] worker process 1 started: python -m visgate_worker"}
{"time":"2026-12-01T20:55:03.5Z","severity":"INFO","message":"inference worker","line":"[runpodsim 56kvsuaa/n1i2427d] worker process 6385 started: /venv/bin/python -m visgate_worker"}
{"time":"2026-12-01T20:55:08.684Z","severity":"INFO","message":"inference worker","line":"[worker 56kvsuaa/n1i2427d] 2026-12-01 20:55:08,684 INFO visgate_worker.callback: ready: {'download_seconds': 0.136, 'load_seconds': 3.629, 'warmup_seconds': 0.059}"}
`
	p := filepath.Join(t.TempDir(), "server.log")
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	wt, err := workerLog(p, "56kvsuaa")
	if err != nil {
		t.Fatal(err)
	}
	want := workerTimes{
		started:     time.Date(2026, 12, 1, 20, 55, 3, 500_000_000, time.UTC),
		readyLogged: time.Date(2026, 12, 1, 20, 55, 8, 684_000_000, time.UTC),
		download:    136 * time.Millisecond, load: 3629 * time.Millisecond, warmup: 59 * time.Millisecond,
	}
	if diff := cmp.Diff(want, wt, cmp.AllowUnexported(workerTimes{})); diff != "" {
		t.Errorf("workerLog (-want +got):\n%s", diff)
	}
	if _, err := workerLog(p, "absent"); err == nil {
		t.Error("no error for an endpoint without a real worker")
	}
}

func TestTargetsExpandAndHaveBareAnswers(t *testing.T) {
	if got := expand("/v1/deployments/{id}", "dep_1"); got != "/v1/deployments/dep_1" {
		t.Errorf("expand = %q", got)
	}
	if got := expand("/v1/deployments", "dep_1"); got != "/v1/deployments" {
		t.Errorf("expand without a placeholder = %q", got)
	}
	files := map[string]bool{}
	for _, tg := range targets() {
		if tg.file == "" || files[tg.file] || tg.fixed <= 0 || tg.openRounds < 1 {
			t.Errorf("target %q: file %q (repeated: %v), fixed rate %v, %d open rounds", tg.name, tg.file, files[tg.file], tg.fixed, tg.openRounds)
		}
		files[tg.file] = true
	}
}
