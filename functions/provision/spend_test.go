package provision_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// hangingBilling is a RunPod whose billing API never answers: a read
// returns only when its context ends. It counts the reads waiting at once.
type hangingBilling struct {
	provision.RunPod
	mu              sync.Mutex
	waiting, most   int
	reads, timedOut int
}

func (h *hangingBilling) EndpointSpend(ctx context.Context, _ secret.Secret, _ string, _ time.Time) (runpod.ServerlessSpend, error) {
	h.mu.Lock()
	h.reads++
	h.waiting++
	h.most = max(h.most, h.waiting)
	h.mu.Unlock()
	<-ctx.Done()
	h.mu.Lock()
	h.waiting--
	h.timedOut++
	h.mu.Unlock()
	return runpod.ServerlessSpend{}, &runpod.TransportError{Op: "GET /billing/serverless", Err: ctx.Err()}
}

func (h *hangingBilling) stats() (reads, most, timedOut int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reads, h.most, h.timedOut
}

// TestHangingBillingDoesNotStallTheChain (issue 23, item 4): with RunPod's
// billing API hanging and more deployments reading their spend than the
// queue has workers, a new deployment still becomes ready, a DELETE still
// takes its endpoint down, at most one read waits on the billing API at a
// time, and a read gives up within the spend timeout, saying so.
func TestHangingBillingDoesNotStallTheChain(t *testing.T) {
	hang := &hangingBilling{}
	e := newEnv(t, options{wrapRunPod: func(rp provision.RunPod) provision.RunPod { hang.RunPod = rp; return hang }})
	var reading []*deployment.Deployment
	for range 6 { // the queue has 4 workers
		reading = append(reading, readyWithEndpoint(t, e, deployment.Limits{MaxSpendUSD: 10}))
	}
	e.waitFor(reading[0].ID, "a spend read waiting", func(*deployment.Deployment) bool { n, _, _ := hang.stats(); return n > 0 })

	id := e.start("openai-community/gpt2", createOpts{})
	e.expectReady(id)
	e.deleteDeployment(reading[1].ID)
	e.waitFor(reading[1].ID, "its endpoint torn down", func(d *deployment.Deployment) bool { return d.EndpointDeleted })

	d := e.waitFor(reading[0].ID, "a read that gave up", func(d *deployment.Deployment) bool { return d.Spend.LastError != "" })
	if d.Spend.LastError != "RunPod did not answer in time" || d.Spend.FailingSince.IsZero() {
		t.Errorf("spend %+v: want the timeout and since when", d.Spend)
	}
	if _, most, _ := hang.stats(); most > 1 {
		t.Errorf("%d reads waited on the billing API at once, want at most 1 (the reads' own budget)", most)
	}
}
