package provision_test

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/wait"
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

// fullDisk is a store whose writes fail as on a full disk while full is set.
type fullDisk struct {
	store.Store
	mu      sync.Mutex
	full    bool
	refused int
}

func (f *fullDisk) Update(ctx context.Context, id string, fn store.UpdateFunc) (*deployment.Deployment, error) {
	f.mu.Lock()
	if f.full {
		f.refused++
		f.mu.Unlock()
		return nil, fmt.Errorf("bolt: update %s: %w: write orchestrator.db: %w", id, store.ErrFull, syscall.ENOSPC)
	}
	f.mu.Unlock()
	return f.Store.Update(ctx, id, fn)
}

func (f *fullDisk) set(full bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.full = full
}

func (f *fullDisk) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// TestChainOutlivesAFullDisk (issue 23, item 5): while the store's disk is
// full, a step's writes fail for longer than the queue's retry budget (50
// attempts here); once space returns, the chain goes on by itself instead
// of waiting for the reconciler.
func TestChainOutlivesAFullDisk(t *testing.T) {
	disk := &fullDisk{}
	e := newEnv(t, options{steps: func(s *provision.Steps) { disk.Store = s.Store; s.Store = disk }})
	disk.set(true)
	id := e.start("openai-community/gpt2", createOpts{})
	e.waitFor(id, "writes refused past the queue's budget", func(*deployment.Deployment) bool { return disk.count() > 60 })
	disk.set(false)
	e.expectReady(id)
}

// TestSpendReadWithoutALimit (issue 25, item 1): the spend of every live
// endpoint is read by the spend step, whether or not its owner set
// max_spend_usd: the figure is recorded with its read time and buckets, it
// is read again every SpendInterval, and nothing is deleted.
func TestSpendReadWithoutALimit(t *testing.T) {
	e := newEnv(t, options{
		rpOpts: []runpodsim.Option{runpodsim.WithBillingSpeed(3600)},
		steps:  func(s *provision.Steps) { s.SpendInterval = 20 * time.Millisecond },
	})
	d := readyWithEndpoint(t, e, deployment.Limits{})
	wait.Until(t, 10*time.Second, "the warm worker bills", func() bool { return e.rp.Spent(runpodKey, d.RunPodEndpointID) > 0 })
	d = e.waitFor(d.ID, "two spend reads, one with a figure", func(d *deployment.Deployment) bool {
		return d.Spend.Reads >= 2 && d.Spend.USD > 0
	})
	if d.Status != deployment.StatusReady {
		t.Errorf("status %s, want ready (no limit)\n%s", d.Status, logText(d))
	}
	if billed := e.rp.Spent(runpodKey, d.RunPodEndpointID); d.Spend.USD > billed {
		t.Errorf("recorded spend %v is more than RunPod billed (%v)", d.Spend.USD, billed)
	}
	if d.Spend.ReadAt.IsZero() || d.Spend.BucketSeconds != 3600 || !d.Spend.Since.Equal(d.Watch.StartedAt.Truncate(time.Hour)) || d.Spend.LastError != "" {
		t.Errorf("spend %+v: want a read figure in hourly buckets since the endpoint's creation hour", d.Spend)
	}
}
