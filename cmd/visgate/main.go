// Command visgate is the command-line client of the Deployment
// Orchestrator: it deploys a model, waits for it with live progress, calls
// the deployed endpoint, and lists, changes and deletes deployments. It
// talks to the public HTTP API only.
//
//	go install ./cmd/visgate    (from a clone of the module)
//
// Configuration: flags, then the environment (VISGATE_URL, VISGATE_API_KEY,
// RUNPOD_API_KEY), then a JSON file (VISGATE_CONFIG, by default
// config.json in the user's config directory, under visgate/).
//
// Exit codes: 0 success; 1 any other error (network, the service's 5xx);
// 2 a usage error or missing configuration; 3 the API refused the request
// (4xx: validation, authentication, not found, conflict, rate limit);
// 4 the deployment or the job failed; 5 --timeout passed while waiting;
// 130 interrupted (Ctrl-C), with nothing deleted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes (documented in the package comment and docs/api.md).
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitRefused     = 3
	exitFailed      = 4
	exitTimeout     = 5
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := newRootCmd(ctx, getenv, stdout, stderr)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	var silent *exitStatus
	if !errors.As(err, &silent) {
		fmt.Fprintln(stderr, "visgate:", err)
	}
	return code
}

// exitStatus is an error whose message was already printed.
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a bad flag, argument or missing setting.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }

func exitCode(ctx context.Context, err error) int {
	var st *exitStatus
	var use *usageError
	var api *apiError
	switch {
	case errors.As(err, &st):
		return st.code
	case errors.As(err, &use):
		return exitUsage
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &api) && api.Status >= 400 && api.Status < 500:
		return exitRefused
	case isFlagError(err):
		return exitUsage
	}
	return exitError
}
