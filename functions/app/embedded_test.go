package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/wait"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
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
	d := &deployment.Deployment{
		ID:              id,
		Owner:           "o",
		Status:          deployment.StatusDeleted,
		StatusChangedAt: now,
		CreatedAt:       now,
		UpdatedAt:       now,
		RunPodKey:       sealed,
		Webhook:         deployment.Webhook{Delivered: true},
		Model:           deployment.Model{ModelID: "m"},
		Endpoint:        deployment.Endpoint{EndpointDeleted: true},
	}
	if err := a.Store.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := runpod.NewClient(sim.URL, nil).CreateEndpoint(ctx, secret.New(key), runpod.EndpointSpec{Name: "late", Image: "img",
		Env: map[string]string{workerenv.DeploymentID: id}, Pools: []string{"AMPERE_48"}}); err != nil {
		t.Fatal(err)
	}

	a.StartReconciler(10 * time.Millisecond)
	wait.Until(t, 10*time.Second, "the orphan of a deleted deployment to leave RunPod", func() bool { return len(sim.Endpoints(key)) == 0 })
}

// seedEmbedded runs an embedded app once, stores a deployment with a sealed
// RunPod key, and closes it; it returns the env and the data dir.
func seedEmbedded(t *testing.T) (map[string]string, string) {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{"DATA_DIR": dir, "API_KEYS": "k-0123456789abcdef"}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The chain does not run: the records stay as stored (and nothing
	// calls the real Hub).
	a.Notifier.Queue = &countingQueue{}
	for range 3 {
		now := time.Now().UTC()
		id := deployment.NewID(now)
		sealed, err := a.Steps.Sealer.Seal(ctx, secret.New("rpa_key"), deployment.AssociatedData(id, deployment.FieldRunPodKey))
		if err != nil {
			t.Fatal(err)
		}
		d := &deployment.Deployment{
			ID:              id,
			Owner:           "o",
			Status:          deployment.StatusValidating,
			StatusChangedAt: now,
			CreatedAt:       now,
			UpdatedAt:       now,
			RunPodKey:       sealed,
			Model:           deployment.Model{ModelID: "m"},
		}
		if err := a.Store.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return env, dir
}

func newEmbedded(env map[string]string) (*App, error) {
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		return nil, err
	}
	return New(context.Background(), cfg, slog.New(slog.DiscardHandler))
}

// Defect 5 of issue 11: the data and its key must belong together. A
// missing keyset.json is not replaced by a new key (in-flight deployments
// would hang for ever and their endpoints leak on DELETE), and a keyset of
// other data is refused.
func TestKeysetThatDoesNotBelongToTheDataIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"deleted", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "keyset.json")); err != nil {
				t.Fatal(err)
			}
		}, "keyset.json is missing"},
		{"replaced", func(t *testing.T, dir string) {
			other := filepath.Join(t.TempDir(), "keyset.json")
			if _, err := seal.LocalKeyset(other); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(other)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "keyset.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "does not belong"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, dir := seedEmbedded(t)
			tc.damage(t, dir)
			a, err := newEmbedded(env)
			if err == nil {
				_ = a.Close(context.Background())
				t.Fatal("started with a keyset that does not belong to the data")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "backup") {
				t.Errorf("error %q: want it to say %q and point to a backup", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "keyset.json")); tc.name == "deleted" && err == nil {
				t.Error("a new keyset was written over the missing one")
			}
		})
	}
	// The undamaged pair starts.
	env, _ := seedEmbedded(t)
	a, err := newEmbedded(env)
	if err != nil {
		t.Fatalf("the data and its own keyset: %v", err)
	}
	_ = a.Close(context.Background())
}

// Resume skips an unreadable record and resumes the others.
func TestResumeSkipsAnUnreadableRecord(t *testing.T) {
	env, dir := seedEmbedded(t)
	db, err := bbolt.Open(filepath.Join(dir, "orchestrator.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	if err := db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("deployments"))
		k, _ := b.Cursor().First()
		victim = string(k)
		return b.Put(k, []byte(`{"id": garbled`))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	a, err := newEmbedded(env)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	q := &countingQueue{}
	a.Queue = q // Resume's tasks are counted, not run
	n, err := a.Resume(context.Background())
	if err != nil || n != 2 || q.n.Load() != 2 {
		t.Errorf("Resume = %d, %v, %d tasks; want the 2 readable deployments resumed, a validate each", n, err, q.n.Load())
	}
	t.Logf("skipped %s", victim)
}

type countingQueue struct{ n atomic.Int32 }

func (q *countingQueue) Enqueue(context.Context, queue.Task) error { q.n.Add(1); return nil }
