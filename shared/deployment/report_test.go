package deployment

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// watched is a deployment whose endpoint exists, in status st.
func watched(st Status, change func(d *Deployment)) *Deployment {
	d := &Deployment{ID: "dep_2026_0000abcd", Status: st, StatusChangedAt: t0, Model: Model{ModelID: "org/model"}}
	d.RunPodEndpointID = "ep1"
	d.Watch.StartedAt = t0
	d.GPUPools = []string{"ADA_24"}
	if change != nil {
		change(d)
	}
	return d
}

func lastLog(d *Deployment) string {
	if len(d.Logs) == 0 {
		return ""
	}
	return d.Logs[len(d.Logs)-1].Message
}

func TestApplyReport(t *testing.T) {
	now := t0.Add(time.Minute)
	cases := []struct {
		name       string
		d          *Deployment
		r          Report
		effect     ReportEffect
		status     Status
		progress   Progress
		log        string // the last log line; "" for none
		downloadUp bool   // Watch.DownloadReported after
	}{
		{
			name: "first download report", d: watched(StatusDownloadingModel, nil),
			r:      Report{Status: StatusDownloadingModel, BytesDone: 10, BytesTotal: 2_500_000_000},
			effect: ReportProgress, status: StatusDownloadingModel,
			progress: Progress{Phase: StatusDownloadingModel, BytesDone: 10, BytesTotal: 2_500_000_000, UpdatedAt: now},
			log:      "Downloading model (2.5 GB)", downloadUp: true,
		},
		{
			name: "later download report too soon",
			d: watched(StatusDownloadingModel, func(d *Deployment) {
				d.Watch.DownloadReported = true
				d.Progress = Progress{Phase: StatusDownloadingModel, BytesDone: 10, BytesTotal: 100, UpdatedAt: now.Add(-time.Second)}
			}),
			r:      Report{Status: StatusDownloadingModel, BytesDone: 50, BytesTotal: 100},
			effect: ReportIgnored, status: StatusDownloadingModel,
			progress:   Progress{Phase: StatusDownloadingModel, BytesDone: 10, BytesTotal: 100, UpdatedAt: now.Add(-time.Second)},
			downloadUp: true,
		},
		{
			name: "the report that completes the download is written at once",
			d: watched(StatusDownloadingModel, func(d *Deployment) {
				d.Watch.DownloadReported = true
				d.Progress = Progress{Phase: StatusDownloadingModel, BytesDone: 10, BytesTotal: 100, UpdatedAt: now.Add(-time.Second)}
			}),
			r:      Report{Status: StatusDownloadingModel, BytesDone: 100, BytesTotal: 100},
			effect: ReportProgress, status: StatusDownloadingModel,
			progress:   Progress{Phase: StatusDownloadingModel, BytesDone: 100, BytesTotal: 100, UpdatedAt: now},
			downloadUp: true,
		},
		{
			name: "bytes never go back",
			d: watched(StatusDownloadingModel, func(d *Deployment) {
				d.Watch.DownloadReported = true
				d.Progress = Progress{Phase: StatusDownloadingModel, BytesDone: 90, BytesTotal: 100, UpdatedAt: now.Add(-time.Hour)}
			}),
			r:      Report{Status: StatusDownloadingModel, BytesDone: 5, BytesTotal: 100},
			effect: ReportIgnored, status: StatusDownloadingModel,
			progress:   Progress{Phase: StatusDownloadingModel, BytesDone: 90, BytesTotal: 100, UpdatedAt: now.Add(-time.Hour)},
			downloadUp: true,
		},
		{
			name: "loading completes the bytes", d: watched(StatusDownloadingModel, func(d *Deployment) {
				d.Progress = Progress{Phase: StatusDownloadingModel, BytesDone: 90, BytesTotal: 100}
			}),
			r:      Report{Status: StatusLoadingModel, Message: "hello"},
			effect: ReportMoved, status: StatusLoadingModel,
			progress: Progress{Phase: StatusLoadingModel, BytesDone: 100, BytesTotal: 100, UpdatedAt: now},
			log:      "Container: hello",
		},
		{
			name: "ready with timings", d: watched(StatusLoadingModel, nil),
			r:      Report{Status: StatusReady, Timings: &Timings{Download: 1, Load: 2, Warmup: 3}},
			effect: ReportMoved, status: StatusReady,
			progress: Progress{Phase: StatusReady, UpdatedAt: now, DownloadSeconds: 1, LoadSeconds: 2, WarmupSeconds: 3},
			log:      "Inference container reported the model ready (download 1.0 s, load 2.0 s, warm-up inference 3.0 s)",
		},
		{
			name: "ready without timings", d: watched(StatusDownloadingModel, nil),
			r:      Report{Status: StatusReady},
			effect: ReportMoved, status: StatusReady,
			progress: Progress{Phase: StatusReady, UpdatedAt: now},
			log:      "Inference container reported the model loaded",
		},
		{
			name: "failed without a reason", d: watched(StatusLoadingModel, nil),
			r:      Report{Status: StatusFailed},
			effect: ReportMoved, status: StatusFailed,
			log: "Deployment failed: Inference container reported a failure: no reason given",
		},
		{
			name: "a late report changes nothing", d: watched(StatusReady, nil),
			r:      Report{Status: StatusLoadingModel},
			effect: ReportIgnored, status: StatusReady,
		},
		{
			name: "a report past a deleted deployment changes nothing", d: watched(StatusDeleted, nil),
			r:      Report{Status: StatusFailed, Error: "x"},
			effect: ReportIgnored, status: StatusDeleted,
		},
		{
			name:   "ready before the endpoint is recorded is parked",
			d:      watched(StatusCreatingEndpoint, func(d *Deployment) { d.RunPodEndpointID = "" }),
			r:      Report{Status: StatusReady, Timings: &Timings{Download: 4}},
			effect: ReportParked, status: StatusCreatingEndpoint,
			progress: Progress{Phase: StatusReady, UpdatedAt: now, DownloadSeconds: 4},
			log:      "Inference container reported ready before the endpoint was recorded",
		},
		{
			name: "a parked phase never goes back",
			d: watched(StatusCreatingEndpoint, func(d *Deployment) {
				d.RunPodEndpointID = ""
				d.Progress = Progress{Phase: StatusReady, UpdatedAt: t0}
			}),
			r:      Report{Status: StatusDownloadingModel, BytesDone: 1, BytesTotal: 2},
			effect: ReportParked, status: StatusCreatingEndpoint,
			progress: Progress{Phase: StatusReady, UpdatedAt: t0},
			log:      "Inference container reported downloading_model before the endpoint was recorded",
		},
		{
			name:   "a failure before the endpoint is recorded fails at once",
			d:      watched(StatusCreatingEndpoint, func(d *Deployment) { d.RunPodEndpointID = "" }),
			r:      Report{Status: StatusFailed, Error: "out of memory"},
			effect: ReportMoved, status: StatusFailed,
			log: "Deployment failed: Inference container reported a failure: out of memory",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.d.Clone()
			effect, err := c.d.ApplyReport(now, c.r)
			if err != nil {
				t.Fatal(err)
			}
			if effect != c.effect || c.d.Status != c.status {
				t.Errorf("effect %v, status %s; want %v, %s", effect, c.d.Status, c.effect, c.status)
			}
			if effect == ReportIgnored {
				if diff := cmp.Diff(before, c.d); diff != "" {
					t.Errorf("an ignored report changed the record (-before +after):\n%s", diff)
				}
				return
			}
			if diff := cmp.Diff(c.progress, c.d.Progress); diff != "" {
				t.Errorf("progress (-want +got):\n%s", diff)
			}
			if got := lastLog(c.d); got != c.log {
				t.Errorf("last log %q, want %q", got, c.log)
			}
			if c.d.Watch.DownloadReported != c.downloadUp {
				t.Errorf("DownloadReported %v, want %v", c.d.Watch.DownloadReported, c.downloadUp)
			}
		})
	}
}

func TestApplyPoll(t *testing.T) {
	limits := WatchLimits{Ready: 10 * time.Minute, Capacity: 5 * time.Minute}
	soon := t0.Add(time.Minute)
	late := t0.Add(limits.Ready)
	up := Poll{Summary: "1 idle", ReadyWorker: "w1", ReadyStatus: "IDLE"}
	own := func(p Poll) Poll { p.OwnWord = true; return p }
	cases := []struct {
		name   string
		d      *Deployment
		now    time.Time
		p      Poll
		status Status
		log    string // the last log line
		check  func(t *testing.T, w Watch)
	}{
		{
			name: "vLLM: a worker up proves ready", d: watched(StatusDownloadingModel, nil), now: soon, p: up,
			status: StatusReady, log: "Model loaded: worker w1 is IDLE",
		},
		{
			name: "inference worker: up is not ready", d: watched(StatusDownloadingModel, nil), now: soon, p: own(up),
			status: StatusDownloadingModel, log: "Workers: 1 idle",
			check: func(t *testing.T, w Watch) {
				if !w.WorkerUp || w.Polls != 1 || w.LastSeen != "1 idle" {
					t.Errorf("watch %+v: want the worker seen up after one poll", w)
				}
			},
		},
		{
			name: "inference worker: a parked ready report",
			d:    watched(StatusDownloadingModel, func(d *Deployment) { d.Progress.Phase = StatusReady }),
			now:  soon, p: own(Poll{Summary: "none yet"}),
			status: StatusReady, log: "Model ready: the inference container had reported it before its endpoint was recorded",
		},
		{
			name: "inference worker: a health check answered", d: watched(StatusLoadingModel, nil), now: soon,
			p:      func() Poll { p := own(up); p.Asked, p.Healthy = true, true; return p }(),
			status: StatusReady, log: "Model ready: the inference worker answered a health check (its ready report did not arrive)",
			check: func(t *testing.T, w Watch) {
				if !w.HealthAskedAt.Equal(soon) {
					t.Errorf("HealthAskedAt %v, want %v", w.HealthAskedAt, soon)
				}
			},
		},
		{
			name: "a crash loop",
			d:    watched(StatusDownloadingModel, func(d *Deployment) { d.Watch.UnhealthyPolls = UnhealthyPolls - 1 }),
			now:  soon, p: Poll{Summary: "1 unhealthy", Unhealthy: 1},
			status: StatusFailed, log: "Deployment failed: Inference workers are crash-looping (unhealthy on 3 consecutive checks); check that the image can serve org/model",
		},
		{
			name: "a healthy poll resets the unhealthy count",
			d:    watched(StatusDownloadingModel, func(d *Deployment) { d.Watch.UnhealthyPolls = 2 }),
			now:  soon, p: Poll{Summary: "1 initializing"}, status: StatusDownloadingModel, log: "Workers: 1 initializing",
			check: func(t *testing.T, w Watch) {
				if w.UnhealthyPolls != 0 {
					t.Errorf("UnhealthyPolls %d, want 0", w.UnhealthyPolls)
				}
			},
		},
		{
			name: "throttled: noted", d: watched(StatusDownloadingModel, nil), now: soon,
			p: Poll{Summary: "1 throttled", ThrottledOnly: true}, status: StatusDownloadingModel, log: "Workers: 1 throttled",
			check: func(t *testing.T, w Watch) {
				if !w.ThrottledSince.Equal(soon) {
					t.Errorf("ThrottledSince %v, want %v", w.ThrottledSince, soon)
				}
			},
		},
		{
			name: "throttled past the capacity deadline",
			d:    watched(StatusDownloadingModel, func(d *Deployment) { d.Watch.ThrottledSince = soon.Add(-limits.Capacity) }),
			now:  soon, p: Poll{Summary: "1 throttled", ThrottledOnly: true},
			status: StatusFailed, log: "Deployment failed: No GPU capacity in pools ADA_24 for 5m0s; try another gpu_tier or try again later",
		},
		{
			name: "the ready deadline", d: watched(StatusDownloadingModel, nil), now: late, p: Poll{Summary: "1 initializing"},
			status: StatusFailed, log: "Deployment failed: Model not loaded within 10m0s of the endpoint's creation",
		},
		{
			name: "the ready deadline of an inference worker that is up", d: watched(StatusLoadingModel, nil), now: late, p: own(up),
			status: StatusFailed,
			log:    "Deployment failed: The inference worker is up but neither reported its model ready nor answered a health check within 10m0s of the endpoint's creation; check that it can reach the callback URL (PUBLIC_BASE_URL)",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.d.ApplyPoll(c.now, c.p, limits); err != nil {
				t.Fatal(err)
			}
			if c.d.Status != c.status {
				t.Errorf("status %s, want %s", c.d.Status, c.status)
			}
			if got := lastLog(c.d); got != c.log {
				t.Errorf("last log %q, want %q", got, c.log)
			}
			if c.check != nil {
				c.check(t, c.d.Watch)
			}
		})
	}
}

func TestApplyPollPastTheWatchIsRefused(t *testing.T) {
	d := watched(StatusDeleted, nil)
	var te *TransitionError
	if err := d.ApplyPoll(t0, Poll{Summary: "1 idle", ReadyWorker: "w1", ReadyStatus: "IDLE"}, WatchLimits{Ready: time.Hour, Capacity: time.Hour}); !errors.As(err, &te) {
		t.Errorf("ApplyPoll on a deleted deployment = %v, want a *TransitionError", err)
	}
}

func TestHealthCheckDue(t *testing.T) {
	now := t0.Add(time.Minute)
	every := 3 * time.Second
	up := Poll{ReadyWorker: "w1", OwnWord: true}
	seenUp := func(d *Deployment) { d.Watch.WorkerUp = true }
	cases := []struct {
		name string
		d    *Deployment
		p    Poll
		want bool
	}{
		{"up at two polls", watched(StatusLoadingModel, seenUp), up, true},
		{"first poll up", watched(StatusLoadingModel, nil), up, false},
		{"not its own word", watched(StatusLoadingModel, seenUp), Poll{ReadyWorker: "w1"}, false},
		{"no worker up now", watched(StatusLoadingModel, seenUp), Poll{OwnWord: true}, false},
		{"asked just now", watched(StatusLoadingModel, func(d *Deployment) { seenUp(d); d.Watch.HealthAskedAt = now.Add(-time.Second) }), up, false},
		{"a ready report is parked", watched(StatusLoadingModel, func(d *Deployment) { seenUp(d); d.Progress.Phase = StatusReady }), up, false},
	}
	for _, c := range cases {
		if got := c.d.HealthCheckDue(now, c.p, every); got != c.want {
			t.Errorf("%s: HealthCheckDue = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSizeNote(t *testing.T) {
	for n, want := range map[int64]string{0: "", 999: " (999 bytes)", 1500: " (1.5 kB)", 2_000_000: " (2.0 MB)", 3_100_000_000: " (3.1 GB)"} {
		if got := sizeNote(n); got != want {
			t.Errorf("sizeNote(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestReportedAndWatched(t *testing.T) {
	reported := map[Status]bool{StatusDownloadingModel: true, StatusLoadingModel: true, StatusReady: true, StatusFailed: true}
	watched := map[Status]bool{StatusDownloadingModel: true, StatusLoadingModel: true}
	for _, st := range append(Statuses, "bogus") {
		if got := st.Reported(); got != reported[st] {
			t.Errorf("%s.Reported() = %v, want %v", st, got, reported[st])
		}
		if got := st.Watched(); got != watched[st] {
			t.Errorf("%s.Watched() = %v, want %v", st, got, watched[st])
		}
	}
}
