// Package app wires the service from its configuration: the store, the
// queue, the clients, the provisioning steps and the HTTP server, for the
// embedded runtime (bbolt, in-process queue) or Google Cloud (Firestore,
// Cloud Tasks). Handlers never know which runtime they are in.
package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/functions/notify"
	"github.com/visgate/deployment-orchestrator/functions/provision"
	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/catalog"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/gpu"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/openapi"
	"github.com/visgate/deployment-orchestrator/shared/queue"
	"github.com/visgate/deployment-orchestrator/shared/queue/inprocess"
	"github.com/visgate/deployment-orchestrator/shared/ratelimit"
	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/bolt"
	"github.com/visgate/deployment-orchestrator/shared/store/storelog"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

// App is the wired service.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	Store    api.Store
	Queue    queue.Queue
	Steps    *provision.Steps
	API      *api.Server
	Notifier *notify.Notifier

	runpod  *runpod.Client
	limiter ratelimit.Limiter
	closers []func(context.Context) error
}

// New wires the service. It makes no network calls beyond opening local
// files (the embedded runtime) or creating lazy clients (Google Cloud).
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*App, error) {
	a := &App{Config: cfg, Log: log}
	ok := false
	defer func() {
		if !ok {
			_ = a.Close(context.Background())
		}
	}()
	keys, err := auth.ParseKeyring(cfg.APIKeys, cfg.APIKeyHashes)
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}

	var sealer seal.Sealer
	var signingKey secret.Secret
	var feed *bolt.Store // the embedded store's change feed
	switch cfg.Backend {
	case config.BackendEmbedded:
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		bs, err := bolt.Open(filepath.Join(cfg.DataDir, "orchestrator.db"), bolt.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		a.Store, feed = bs, bs
		a.closers = append(a.closers, func(context.Context) error { return bs.Close() })
		if sealer, err = openKeyset(ctx, bs, filepath.Join(cfg.DataDir, "keyset.json")); err != nil {
			return nil, err
		}
		if signingKey, err = signingKeyFrom(cfg, filepath.Join(cfg.DataDir, "webhook-signing.key")); err != nil {
			return nil, err
		}
	case config.BackendGCP:
		if err := a.wireGCP(ctx, cfg, &sealer, &signingKey); err != nil {
			return nil, err
		}
	}

	// The server log tells each deployment's story: every entry of its own log.
	a.Store = storelog.New(a.Store, log)

	// The simulators (SIMULATE=1) are the local commands' business
	// (functions/localsim): they point HF_API_URL and RUNPOD_API_URL at them.
	a.runpod = runpod.NewClient(cfg.RunPodAPIURL, nil)
	a.Steps = &provision.Steps{
		Store:            a.Store,
		Sealer:           sealer,
		Hub:              huggingface.NewClient(cfg.HFAPIURL, nil),
		RunPod:           a.runpod,
		GPUs:             gpu.Default(),
		Sender:           webhook.NewSender(webhook.Options{AllowPrivate: cfg.WebhookAllowPrivate, PrivateOnly: cfg.WebhookPrivateOnly}),
		SigningKey:       signingKey,
		Images:           cfg.Images,
		CallbackBase:     cfg.PublicBaseURL,
		PollInterval:     cfg.PollInterval,
		CapacityDeadline: cfg.CapacityDeadline,
		ReadyDeadline:    cfg.ReadyDeadline,
		HubWait:          cfg.HubWait,
		LateCreateWindow: cfg.LateCreateWindow,
		SpendInterval:    cfg.SpendInterval,
		Log:              log,
	}
	a.Steps.RunID = newRunID()
	// The embedded store's file lock keeps every other process out: a
	// create lease another run holds is a dead process's.
	a.Steps.SoleRunner = cfg.Backend == config.BackendEmbedded
	// One per-account catalogue for the API's gpu_tier check and select_gpu.
	a.Steps.LiveGPUs = &gpu.Live{Base: a.Steps.GPUs, Source: runpodOffers(a.runpod)}
	a.Notifier = &notify.Notifier{Log: log}

	if a.limiter == nil {
		a.limiter = ratelimit.NewMemory(cfg.RateLimitPerMinute, time.Minute, nil)
	}
	if cfg.Backend == config.BackendEmbedded {
		q := inprocess.New(a.Steps.Handle, inprocess.Options{Logger: log})
		a.Queue = q
		a.closers = append(a.closers, q.Close)
		feed.Subscribe(a.Notifier.Func())
	}
	a.Steps.Queue = a.Queue
	a.Notifier.Queue = a.Queue

	a.API = &api.Server{
		Store:                a.Store,
		Sealer:               sealer,
		Keys:                 keys,
		Limiter:              a.limiter,
		RateLimit:            cfg.RateLimitPerMinute,
		AuthFailures:         ratelimit.NewMemory(cfg.AuthFailuresPerMinute, time.Minute, nil),
		ClientAddr:           clientAddr(cfg),
		BehindGateway:        cfg.BehindGateway,
		ProgressReports:      ratelimit.NewMemory(api.ProgressReportsPerMinute, time.Minute, nil),
		Models:               catalog.Default(),
		GPUs:                 gpu.Default(),
		LiveGPUs:             a.Steps.LiveGPUs,
		SigningKey:           signingKey,
		AllowPrivateWebhooks: cfg.WebhookAllowPrivate,
		PrivateWebhooksOnly:  cfg.WebhookPrivateOnly,
		DefaultTTL:           cfg.DefaultTTL,
		Docs:                 openapi.Handler(),
		Log:                  log,
	}
	ok = true
	return a, nil
}

// Resume enqueues what every deployment still owes (the embedded runtime
// calls it at start: its queue lives in memory).
func (a *App) Resume(ctx context.Context) (int, error) {
	now := time.Now()
	kick := int(now.Unix())
	n := 0
	var errs []error
	q := store.ListQuery{Limit: 100}
	for {
		page, next, err := a.Store.List(ctx, q)
		if err != nil {
			return n, errors.Join(append(errs, fmt.Errorf("resume: list: %w", err))...)
		}
		for _, d := range page {
			if !d.NeedsWork() {
				continue
			}
			// One deployment that cannot be resumed does not hold up the
			// others.
			if err := queue.EnqueueAll(ctx, a.Queue, queue.Resumed(d, now, kick)); err != nil {
				errs = append(errs, fmt.Errorf("resume %s: %w", d.ID, err))
				continue
			}
			n++
		}
		if next == "" {
			return n, errors.Join(errs...)
		}
		q.Cursor = next
	}
}

// EmbeddedReconcileInterval is how often the embedded runtime runs the
// reconciler (Cloud Scheduler's job does it every 5 minutes in Google Cloud).
const EmbeddedReconcileInterval = 5 * time.Minute

// StartReconciler runs the reconciler every interval in the background
// until Close: the embedded runtime's orphan sweep and repair of stuck
// deployments, the same code Cloud Scheduler runs in Google Cloud.
func (a *App) StartReconciler(every time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := a.Reconciler()
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			rep, err := r.Run(ctx)
			if err != nil && ctx.Err() == nil {
				a.Log.Error("reconcile", "error", err.Error(), "report", rep)
			} else if rep.Resumed+rep.Failed+rep.OrphansDeleted+rep.ScalingMended > 0 {
				a.Log.Info("reconcile", "report", rep)
			}
		}
	}()
	a.closers = append(a.closers, func(context.Context) error {
		cancel()
		<-done
		return nil
	})
}

// Close releases everything New opened, last first.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i](ctx))
	}
	a.closers = nil
	return errors.Join(errs...)
}

// newRunID names this process's runs of the chain (see provision.Steps.RunID).
func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "run_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// signingKeyFrom returns WEBHOOK_SIGNING_KEY, or the key in path, made on
// first use (mode 0600).
func signingKeyFrom(cfg *config.Config, path string) (secret.Secret, error) {
	if cfg.WebhookSigningKey != "" {
		return secret.New(cfg.WebhookSigningKey), nil
	}
	b, err := os.ReadFile(path)
	if err == nil {
		return secret.New(strings.TrimSpace(string(b))), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return secret.Secret{}, fmt.Errorf("read webhook signing key: %w", err)
	}
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return secret.Secret{}, fmt.Errorf("webhook signing key: %w", err)
	}
	v := base64.RawURLEncoding.EncodeToString(k[:])
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return secret.Secret{}, fmt.Errorf("write webhook signing key: %w", err)
	}
	return secret.New(v), nil
}

// clientAddr is where a request comes from, for failed-auth throttling:
// in Google Cloud the entry of X-Forwarded-For that Google's front end
// appended (FORWARDED_HOPS from the right), locally the connection's address.
func clientAddr(cfg *config.Config) func(*http.Request) string {
	hops := -1
	if cfg.Backend == config.BackendGCP {
		hops = cfg.ForwardedHops
	}
	return func(r *http.Request) string { return httpx.ClientAddr(r, hops) }
}

// Handler serves every public function on one port, the way one public
// base URL does in the cloud.
func (a *App) Handler() http.Handler { return a.API.Handler() }

// ReconcileGrace is added to the chain's own deadlines before the
// reconciler steps in.
const ReconcileGrace = 5 * time.Minute
