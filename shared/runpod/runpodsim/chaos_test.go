package runpodsim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

func chaosSpec() runpod.EndpointSpec {
	return runpod.EndpointSpec{Name: "c", Image: "img", Pools: []string{"AMPERE_48"}, WorkersMin: 1, WorkersMax: 1,
		Env: map[string]string{"VISGATE_DEPLOYMENT_ID": "dep_2026_00000001"}}
}

// The same seed injects the same faults into the same calls.
func TestChaosReplaysFromItsSeed(t *testing.T) {
	run := func(seed uint64) []string {
		s := New(WithAnyKey())
		defer s.Close()
		s.SetChaos(seed, Chaos{RateLimit: 0.2, ServerError: 0.2})
		c := runpod.NewClient(s.URL, nil)
		var got []string
		for range 40 {
			_, err := c.ListEndpoints(context.Background(), secret.New("rpa_chaos"))
			var re *runpod.Error
			switch {
			case err == nil:
				got = append(got, "ok")
			case errors.As(err, &re):
				got = append(got, http.StatusText(re.Status))
			default:
				t.Fatal(err)
			}
		}
		return got
	}
	a, b := run(7), run(7)
	faults := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("call %d: %s then %s with the same seed", i, a[i], b[i])
		}
		if a[i] != "ok" {
			faults++
		}
	}
	if faults == 0 || faults == len(a) {
		t.Errorf("%d faults in %d calls", faults, len(a))
	}
}

func TestHangNextOutlastsTheClientThenServes(t *testing.T) {
	s := New(WithAnyKey())
	defer s.Close()
	s.HangNext(OpCreateEndpoint, 1, 300*time.Millisecond)
	c := runpod.NewClient(s.URL, &http.Client{Timeout: 50 * time.Millisecond})
	_, err := c.CreateEndpoint(context.Background(), secret.New("rpa_hang"), chaosSpec())
	var te *runpod.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("err %v, want a transport error (timeout)", err)
	}
	// The client gave up; the hang ended with it and RunPod made the endpoint.
	wait.Until(t, 5*time.Second, "the create the client gave up on", func() bool { return len(s.Endpoints("rpa_hang")) == 1 })
}

func TestCreateLateLandsAfterTheConnectionDrops(t *testing.T) {
	s := New(WithAnyKey())
	defer s.Close()
	// Late enough that the check below runs before it lands, however
	// loaded the machine: the test waits for the landing, not for the time.
	s.CreateLate(0, time.Second)
	c := runpod.NewClient(s.URL, nil)
	if _, err := c.CreateEndpoint(context.Background(), secret.New("rpa_late"), chaosSpec()); err == nil {
		t.Fatal("a late create answered")
	}
	if n := len(s.Endpoints("rpa_late")); n != 0 {
		t.Fatalf("%d endpoints before the late create landed", n)
	}
	wait.Until(t, 5*time.Second, "the late create to land", func() bool { _, landed := s.LateCreates(); return landed == 1 })
	if n := len(s.Endpoints("rpa_late")); n != 1 {
		t.Errorf("%d endpoints after the late create landed", n)
	}
}

func TestWorkersNeverStart(t *testing.T) {
	s := New(WithAnyKey(), WithBootDelay(time.Millisecond), WithSilentContainer())
	defer s.Close()
	ctx, key := context.Background(), secret.New("rpa_ns")
	c := runpod.NewClient(s.URL, nil)
	s.SetWorkersNeverStart(true)
	stuck, err := c.CreateEndpoint(ctx, key, chaosSpec())
	if err != nil {
		t.Fatal(err)
	}
	s.SetWorkersNeverStart(false)
	control, err := c.CreateEndpoint(ctx, key, chaosSpec())
	if err != nil {
		t.Fatal(err)
	}
	status := func(id string) runpod.WorkerStatus {
		ws, err := c.Workers(ctx, key, id)
		if err != nil || len(ws) != 1 {
			t.Fatalf("workers of %s: %+v, %v", id, ws, err)
		}
		return ws[0].Status
	}
	// Once the worker that started later is ready, the other still initialises.
	wait.Until(t, 5*time.Second, "the control worker to start", func() bool { return status(control.ID) == runpod.WorkerIdle })
	if got := status(stuck.ID); got != runpod.WorkerInitializing {
		t.Errorf("worker of a never-start endpoint is %s, want INITIALIZING", got)
	}
}

func TestFailForIsAnOutage(t *testing.T) {
	s := New(WithAnyKey())
	defer s.Close()
	c := runpod.NewClient(s.URL, nil)
	s.FailFor(time.Hour, http.StatusInternalServerError)
	var re *runpod.Error
	if _, err := c.ListEndpoints(context.Background(), secret.New("rpa_out")); !errors.As(err, &re) || re.Status != 500 {
		t.Fatalf("during the outage: %v", err)
	}
	s.FailFor(0, 0)
	if _, err := c.ListEndpoints(context.Background(), secret.New("rpa_out")); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}
