package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	gfirestore "cloud.google.com/go/firestore"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/functions/reconcile"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/queue/cloudtasks"
	"github.com/visgate/deployment-orchestrator/shared/ratelimit/firestorelimit"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store/firestore"
)

// wireGCP opens Firestore and Cloud Tasks (or their emulators, when
// FIRESTORE_EMULATOR_HOST / CLOUD_TASKS_EMULATOR_HOST are set) and the
// secrets: Cloud KMS envelope encryption, or a local keyset under DATA_DIR
// when KMS_KEY_URI is unset (local emulator runs only).
func (a *App) wireGCP(ctx context.Context, cfg *config.Config, sealer *seal.Sealer, signingKey *secret.Secret) error {
	// The readiness check's whole budget goes to the store's ping.
	fs, err := firestore.New(ctx, cfg.ProjectID, firestore.WithPingTimeout(api.ReadinessTimeout))
	if err != nil {
		return fmt.Errorf("firestore: %w", err)
	}
	a.Store = fs
	a.closers = append(a.closers, func(context.Context) error { return fs.Close() })
	// The rate limit is shared by every instance: counters in Firestore.
	rl, err := gfirestore.NewClient(ctx, cfg.ProjectID)
	if err != nil {
		return fmt.Errorf("firestore (rate limits): %w", err)
	}
	a.closers = append(a.closers, func(context.Context) error { return rl.Close() })
	a.limiter = firestorelimit.New(rl, cfg.RateLimitPerMinute, time.Minute)

	qcfg := cloudtasks.Config{
		QueuePath:           fmt.Sprintf("projects/%s/locations/%s/queues/%s", cfg.ProjectID, cfg.Location, cfg.TasksQueue),
		TargetURL:           cfg.ProvisionTaskURL,
		ServiceAccountEmail: cfg.TasksServiceAccount,
	}
	var q *cloudtasks.Queue
	if addr := cfg.CloudTasksEmulatorHost; addr != "" {
		q, err = cloudtasks.New(ctx, qcfg, cloudtasks.NewEmulatorClientOptions(addr)...)
	} else {
		q, err = cloudtasks.New(ctx, qcfg)
	}
	if err != nil {
		return fmt.Errorf("cloud tasks: %w", err)
	}
	a.Queue = q
	a.closers = append(a.closers, func(context.Context) error { return q.Close() })

	if cfg.KMSKeyURI != "" {
		if *sealer, err = seal.KMS(ctx, cfg.KMSKeyURI); err != nil {
			return fmt.Errorf("kms: %w", err)
		}
	} else {
		if cfg.FirestoreEmulatorHost == "" {
			return fmt.Errorf("BACKEND=gcp needs KMS_KEY_URI (a local keyset is only allowed against the emulators)")
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		if *sealer, err = seal.LocalKeyset(filepath.Join(cfg.DataDir, "keyset.json")); err != nil {
			return fmt.Errorf("local keyset: %w", err)
		}
	}
	if cfg.WebhookSigningKey == "" && cfg.FirestoreEmulatorHost == "" {
		return fmt.Errorf("BACKEND=gcp needs WEBHOOK_SIGNING_KEY")
	}
	if *signingKey, err = signingKeyFrom(cfg, filepath.Join(cfg.DataDir, "webhook-signing.key")); err != nil {
		return err
	}
	return nil
}

// TaskHandler is the ProvisionTask function: Cloud Tasks POSTs each task.
func (a *App) TaskHandler() http.Handler { return cloudtasks.Handler(a.Steps.Handle, a.Log) }

// DeploymentChanged is the Firestore trigger function.
func (a *App) DeploymentChanged(ctx context.Context, e event.Event) error {
	return a.Notifier.HandleEvent(ctx, e)
}

// Reconciler returns the chain's repairer.
func (a *App) Reconciler() *reconcile.Reconciler {
	return &reconcile.Reconciler{
		Store:      a.Store,
		Queue:      a.Queue,
		Sealer:     a.Steps.Sealer,
		RunPod:     a.runpod,
		StuckAfter: 2*a.Config.PollInterval + ReconcileGrace,
		Deadline:   a.Config.ReadyDeadline + ReconcileGrace,
		Log:        a.Log,
	}
}

// ReconcileHandler is the Reconcile function (Cloud Scheduler calls it).
func (a *App) ReconcileHandler() http.Handler { return a.Reconciler().Handler() }
