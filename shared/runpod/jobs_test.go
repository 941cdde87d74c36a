package runpod_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/wait"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// The health check of issue 23, item 1, through the job API: a worker that
// is up answers it; a job nobody answers in time comes back IN_QUEUE and is
// cancelled.
func TestRunSyncHealthCheckAndCancel(t *testing.T) {
	sim, rp := newSim(t, runpodsim.WithSilentContainer(), runpodsim.WithRequestURLBase(""))
	ctx := testCtx(t)
	key := secret.New(testKey)
	ep, err := rp.CreateEndpoint(ctx, key, runpod.EndpointSpec{Name: "h", Image: "img", Pools: []string{"AMPERE_48"},
		Env: map[string]string{workerenv.ModelName: "m/m"}, WorkersMin: 1, WorkersMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 5*time.Second, "a worker up", func() bool {
		ws, err := rp.Workers(ctx, key, ep.ID)
		return err == nil && len(ws) == 1 && ws[0].Status.Ready()
	})
	res, err := rp.RunSync(ctx, key, ep.URL, map[string]any{workerenv.HealthCheck: true}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	if res.Status != runpod.JobCompleted || json.Unmarshal(res.Output, &out) != nil || out[workerenv.HealthCheck] != workerenv.HealthReady {
		t.Fatalf("health check: %+v %s", res, res.Output)
	}
	// Simulated workers take no other job: it waits in the queue.
	res, err = rp.RunSync(ctx, key, ep.URL, map[string]any{"prompt": "x"}, time.Second)
	if err != nil || res.Status != runpod.JobInQueue {
		t.Fatalf("unanswered job: %+v, %v", res, err)
	}
	if err := rp.CancelJob(ctx, key, ep.URL, res.ID); err != nil {
		t.Fatal(err)
	}
	for _, j := range sim.Jobs(testKey, ep.ID) {
		if j.ID == res.ID && j.Status != runpodsim.JobCancelled {
			t.Errorf("job %s is %s after the cancel", j.ID, j.Status)
		}
	}
}
