package provision_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// scaleHook counts the scale writes in flight and, when gate is set, holds
// each one until the test releases it.
type scaleHook struct {
	provision.RunPod
	mu       sync.Mutex
	started  int
	inFlight int
	gate     chan struct{}
}

func (h *scaleHook) UpdateScaling(ctx context.Context, key secret.Secret, id string, lo, hi, idle int) error {
	h.mu.Lock()
	h.started++
	h.inFlight++
	gate := h.gate
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inFlight--
		h.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.RunPod.UpdateScaling(ctx, key, id, lo, hi, idle)
}

func (h *scaleHook) counts() (started, inFlight int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.started, h.inFlight
}

// TestQuickPatchesLeaveRunPodWithTheNewest (issue 23, item 2): two PATCHes
// of the scaling 0.3 s apart, RunPod taking 0.5 s to apply the first; the
// first write lands after the second. Once every write has returned,
// RunPod holds the newest scaling, the one the record shows.
func TestQuickPatchesLeaveRunPodWithTheNewest(t *testing.T) {
	hook := &scaleHook{}
	e := newEnv(t, options{wrapRunPod: func(rp provision.RunPod) provision.RunPod { hook.RunPod = rp; return hook }})
	id := e.start("openai-community/gpt2", createOpts{scaling: deployment.Scaling{MinWorkers: 0, MaxWorkers: 2, IdleTimeoutSeconds: 5}})
	e.expectReady(id)
	base, _ := hook.counts()
	h := e.publicAPI()

	e.rp.HangNext(runpodsim.OpUpdateEndpoint, 1, 500*time.Millisecond)
	if rec := e.patch(h, id, `{"min_workers":1,"max_workers":2}`); rec.Code != http.StatusOK {
		t.Fatalf("first PATCH = %d %s", rec.Code, rec.Body)
	}
	wait.Until(t, settleTimeout, "the first write in flight", func() bool { _, n := hook.counts(); return n == 1 })
	// The second PATCH comes while the first write hangs: RunPod applies it
	// at once, and the first one after it.
	if rec := e.patch(h, id, `{"min_workers":0,"max_workers":3}`); rec.Code != http.StatusOK {
		t.Fatalf("second PATCH = %d %s", rec.Code, rec.Body)
	}
	// The first run's write returns after the second PATCH: that run
	// writes the current scaling again (a third write). Main made two.
	d := e.waitFor(id, "the first run's write repeated, every write returned, the newest recorded", func(d *deployment.Deployment) bool {
		started, inFlight := hook.counts()
		return d.Scaled && d.ScalingChanges == 2 && started-base >= 3 && inFlight == 0
	})
	ep := e.endpointsOf(id)[0]
	if ep.WorkersMin != 0 || ep.WorkersMax != 3 {
		t.Errorf("RunPod scales the endpoint %d..%d; the record says %d..%d\n%s",
			ep.WorkersMin, ep.WorkersMax, d.Scaling.MinWorkers, d.Scaling.MaxWorkers, logText(d))
	}
}

// TestPatchRacingDeleteLogsNothingUntrue (issue 23, item 7): a scale run
// whose write reaches RunPod after a DELETE tore the endpoint down says
// nothing of a warm worker that costs money: there is none.
func TestPatchRacingDeleteLogsNothingUntrue(t *testing.T) {
	hook := &scaleHook{}
	e := newEnv(t, options{wrapRunPod: func(rp provision.RunPod) provision.RunPod { hook.RunPod = rp; return hook }})
	id := e.start("openai-community/gpt2", createOpts{})
	e.expectReady(id)
	base, _ := hook.counts()

	gate := make(chan struct{})
	hook.mu.Lock()
	hook.gate = gate
	hook.mu.Unlock()
	if rec := e.patch(e.publicAPI(), id, `{"min_workers":1,"max_workers":2}`); rec.Code != http.StatusOK {
		t.Fatalf("PATCH = %d %s", rec.Code, rec.Body)
	}
	wait.Until(t, settleTimeout, "the scale write in flight", func() bool { n, _ := hook.counts(); return n > base })
	e.deleteDeployment(id)
	e.waitFor(id, "the endpoint torn down", func(d *deployment.Deployment) bool { return d.EndpointDeleted })
	close(gate)
	wait.Until(t, settleTimeout, "the scale write returned", func() bool { _, n := hook.counts(); return n == 0 })
	d := e.settle(id)
	if hasLog(d, "keeps one warm worker") || hasLog(d, "costs money") || hasLog(d, "Could not set") {
		t.Errorf("the log claims a warm worker on a deleted endpoint:\n%s", logText(d))
	}
}
