// Package orchestrator registers every Cloud Run function of the Deployment
// Orchestrator with functions-framework-go. The Go buildpack builds this
// package; FUNCTION_TARGET picks the entry point of each deployed function.
//
// The service is wired lazily, on the first request an instance serves, so
// a cold start does no network work.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/functions/app"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/logging"
)

// Entry points besides the API's (api.Functions()).
const (
	FnProvisionTask     = "ProvisionTask"
	FnDeploymentChanged = "DeploymentChanged"
	FnReconcile         = "Reconcile"
)

// EntryPoints lists every registered function.
func EntryPoints() []string {
	return append(api.Functions(), FnProvisionTask, FnDeploymentChanged, FnReconcile)
}

func init() {
	for _, name := range api.Functions() {
		functions.HTTP(name, lazyHTTP(func(a *app.App) http.Handler { return a.API.Function(name) }))
	}
	functions.HTTP(FnProvisionTask, lazyHTTP(func(a *app.App) http.Handler { return a.TaskHandler() }))
	functions.HTTP(FnReconcile, lazyHTTP(func(a *app.App) http.Handler { return a.ReconcileHandler() }))
	functions.CloudEvent(FnDeploymentChanged, func(ctx context.Context, e event.Event) error {
		a, err := instance(ctx)
		if err != nil {
			return err
		}
		return a.DeploymentChanged(ctx, e)
	})
}

// AnnounceStartup makes each instance log what its configuration means
// (app.LogStartup) when it is wired. make dev's supervisor logs that once for
// all its function processes and turns it off in them.
var AnnounceStartup = true

var (
	once    sync.Once
	theApp  *app.App
	initErr error
)

// instance wires the service once per instance, on first use.
func instance(ctx context.Context) (*app.App, error) {
	once.Do(func() { theApp, initErr = wire(context.WithoutCancel(ctx), os.Getenv, os.Stdout) })
	return theApp, initErr
}

// ErrSimulate is the configuration error of a deployed function given
// SIMULATE: the simulators are not even linked into it.
var ErrSimulate = errors.New("config: SIMULATE is for the local commands (make run, make dev); a deployed function talks to the real Hugging Face Hub and RunPod: unset it")

// wire reads the configuration and wires a deployed function's service.
func wire(ctx context.Context, getenv func(string) string, logOut io.Writer) (*app.App, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	if cfg.Simulate {
		return nil, ErrSimulate
	}
	log := logging.New(logOut, cfg.LogLevel, cfg.ProjectID)
	if fn := getenv("FUNCTION_TARGET"); fn != "" {
		log = log.With("function", fn)
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("wiring failed", "error", err.Error())
		return nil, err
	}
	if AnnounceStartup {
		app.LogStartup(ctx, log, cfg)
	}
	return a, nil
}

func lazyHTTP(build func(*app.App) http.Handler) http.HandlerFunc {
	var (
		once sync.Once
		h    http.Handler
	)
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := instance(r.Context())
		if err != nil {
			fmt.Fprintln(os.Stderr, "orchestrator: configuration error:", err)
			httpx.WriteError(w, httpx.Internal(httpx.NewRequestID()))
			return
		}
		once.Do(func() { h = build(a) })
		h.ServeHTTP(w, r)
	}
}
