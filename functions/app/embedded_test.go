package app

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

func embeddedApp(t *testing.T, env map[string]string) *App {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	return a
}

// Defect 2 of issue 11: the embedded runtime sweeps orphans too (before,
// only Google Cloud ran the reconciler): an endpoint RunPod made after its
// deployment was deleted goes away without a restart.
func TestEmbeddedRuntimeSweepsOrphans(t *testing.T) {
	const key = "rpa_embedded_sweep"
	sim := runpodsim.New(runpodsim.WithSilentContainer())
	t.Cleanup(sim.Close)
	sim.AddAccount(key, 100)
	a := embeddedApp(t, map[string]string{"DATA_DIR": t.TempDir(), "RUNPOD_API_URL": sim.URL, "API_KEYS": "k-0123456789abcdef"})

	ctx := context.Background()
	now := time.Now().UTC()
	id := deployment.NewID(now)
	sealed, err := a.Steps.Sealer.Seal(ctx, secret.New(key), deployment.AssociatedData(id, deployment.FieldRunPodKey))
	if err != nil {
		t.Fatal(err)
	}
	d := &deployment.Deployment{ID: id, Owner: "o", Status: deployment.StatusDeleted, StatusChangedAt: now,
		CreatedAt: now, UpdatedAt: now, RunPodKey: sealed, EndpointDeleted: true, ModelID: "m",
		Webhook: deployment.Webhook{Delivered: true}}
	if err := a.Store.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := runpod.NewClient(sim.URL, nil).CreateEndpoint(ctx, secret.New(key), runpod.EndpointSpec{Name: "late", Image: "img",
		Env: map[string]string{provision.EnvDeploymentID: id}, Pools: []string{"AMPERE_48"}}); err != nil {
		t.Fatal(err)
	}

	a.StartReconciler(10 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for len(sim.Endpoints(key)) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the orphan of a deleted deployment is still on RunPod")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
