package cloudtasks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/queue/faultqueue"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// The fault-injecting wrapper works with Cloud Tasks as with the in-process
// queue: lost enqueues never arrive, the others do, duplicated deliveries
// run twice.
func TestFaultQueueWithEmulator(t *testing.T) {
	emulatorAddr(t)
	fq := faultqueue.New(11, faultqueue.Faults{Drop: 0.25, Duplicate: 0.4, Delay: 0.5, MaxDelay: 50 * time.Millisecond})
	var mu sync.Mutex
	runs := map[string]int{}
	h := fq.Handler(func(_ context.Context, t queue.Task, _ queue.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		runs[t.Name()]++
		return nil
	})
	q := openEmulatorQueue(t, Handler(h, slog.New(slog.DiscardHandler)), Config{})
	fq.Wrap(q)
	const n = 24
	for i := range n {
		if err := fq.Enqueue(t.Context(), queue.Task{DeploymentID: "dep_2026_0000fa17", Step: deployment.StepWatch, Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	st := fq.Stats()
	want := n - st.Dropped
	var total, distinct int
	wait.Until(t, 30*time.Second, "every task delivered, duplicates included", func() bool {
		mu.Lock()
		total, distinct = 0, len(runs)
		for _, r := range runs {
			total += r
		}
		mu.Unlock()
		st = fq.Stats()
		return distinct == want && st.Delivered == want && total == want+st.Duplicated
	}, func() string { return fmt.Sprintf("%d distinct tasks ran %d times; stats %+v", distinct, total, st) })
	fq.Stop()
	if st.Dropped == 0 || st.Duplicated == 0 {
		t.Errorf("stats %+v: the seed injected no drop or no duplicate", st)
	}
}
