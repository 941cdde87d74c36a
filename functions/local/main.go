// Command local serves every function of the orchestrator on one port: the
// embedded default of `make run` (bbolt, in-process queue), or with
// BACKEND=gcp the Google Cloud runtime against its emulators (`make dev`).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/visgate/deployment-orchestrator/functions/app"
	"github.com/visgate/deployment-orchestrator/functions/localsim"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := realMain(ctx, os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// realMain runs the server until ctx ends. ready, when not nil, receives
// the listening address once the server accepts connections.
func realMain(ctx context.Context, getenv func(string) string, logOut io.Writer, ready chan<- string) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := logging.New(logOut, cfg.LogLevel, cfg.ProjectID)
	slog.SetDefault(log)
	if cfg.Simulate {
		sims := localsim.Start(log, cfg)
		defer sims.Close()
		sims.Apply(cfg)
	}
	stopProfiler, err := startProfiler(getenv, log)
	if err != nil {
		return err
	}
	defer stopProfiler()
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	if cfg.PublicBaseURLDefaulted {
		cfg.PublicBaseURL = "http://" + ln.Addr().String() // the real port when PORT=0
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	app.LogStartup(ctx, log, cfg)
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Close(closeCtx); err != nil {
			log.Error("shutdown", "error", err.Error())
		}
	}()
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", "http://"+ln.Addr().String(), "backend", string(cfg.Backend), "simulate", cfg.Simulate)
	if cfg.Backend == config.BackendEmbedded {
		a.StartReconciler(app.EmbeddedReconcileInterval)
	}
	n, err := a.Resume(ctx)
	if err != nil {
		log.Error("resume unfinished deployments", "error", err.Error())
	} else if n > 0 {
		log.Info("resumed unfinished deployments", "count", n)
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
