package faultqueue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/queue/faultqueue"
	"github.com/visgate/deployment-orchestrator/shared/queue/inprocess"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

type recorder struct {
	mu    sync.Mutex
	tasks []queue.Task
}

func (r *recorder) Enqueue(_ context.Context, t queue.Task) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = append(r.tasks, t)
	return nil
}

var faults = faultqueue.Faults{Drop: 0.2, Fail: 0.1, Delay: 0.3, MaxDelay: time.Second}

// outcomes enqueues 200 tasks and says what became of each.
func outcomes(t *testing.T, seed uint64) []string {
	fq := faultqueue.New(seed, faults)
	rec := &recorder{}
	fq.Wrap(rec)
	var out []string
	for i := range 200 {
		task := queue.Task{DeploymentID: "dep_2026_00000001", Step: "watch", Seq: i}
		err := fq.Enqueue(context.Background(), task)
		switch {
		case errors.Is(err, faultqueue.ErrInjected):
			out = append(out, "failed")
		case err != nil:
			t.Fatal(err)
		case len(rec.tasks) == 0 || rec.tasks[len(rec.tasks)-1].Seq != i:
			out = append(out, "dropped")
		default:
			out = append(out, fmt.Sprint(rec.tasks[len(rec.tasks)-1].Delay))
			rec.tasks = rec.tasks[:0]
		}
	}
	return out
}

func TestSameSeedSameFaults(t *testing.T) {
	a, b, c := outcomes(t, 42), outcomes(t, 42), outcomes(t, 43)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("seed 42 twice (-first +second):\n%s", diff)
	}
	if cmp.Equal(a, c) {
		t.Error("seeds 42 and 43 made the same decisions")
	}
	count := map[string]int{}
	for _, o := range a {
		switch o {
		case "failed", "dropped", "0s":
			count[o]++
		default:
			count["delayed"]++
		}
	}
	for _, k := range []string{"failed", "dropped", "delayed", "0s"} {
		if count[k] == 0 {
			t.Errorf("no %s task in 200: %v", k, count)
		}
	}
}

// With the in-process queue: every task that gets through runs, duplicated
// ones twice.
func TestWithTheInprocessQueue(t *testing.T) {
	fq := faultqueue.New(7, faultqueue.Faults{Duplicate: 0.5, Delay: 0.5, MaxDelay: 5 * time.Millisecond})
	var mu sync.Mutex
	runs := map[string]int{}
	h := fq.Handler(func(_ context.Context, t queue.Task, _ queue.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		runs[t.Name()]++
		return nil
	})
	q := inprocess.New(h, inprocess.Options{})
	fq.Wrap(q)
	const n = 50
	for i := range n {
		if err := fq.Enqueue(context.Background(), queue.Task{DeploymentID: "dep_2026_00000001", Step: "watch", Seq: i}); err != nil {
			t.Fatal(err)
		}
	}
	wait.Until(t, 10*time.Second, "every task run, duplicates included", func() bool {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, r := range runs {
			total += r
		}
		return total == n+fq.Stats().Duplicated && len(runs) == n
	}, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("runs %v, stats %+v", runs, fq.Stats())
	})
	fq.Wait()
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := fq.Stats()
	if st.Duplicated == 0 || st.Delayed == 0 || st.Delivered != n {
		t.Errorf("stats %+v", st)
	}
	twice := 0
	for _, r := range runs {
		if r == 2 {
			twice++
		}
	}
	if twice != st.Duplicated {
		t.Errorf("%d tasks ran twice, %d duplicated", twice, st.Duplicated)
	}
}
