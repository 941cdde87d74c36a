// Command webhookreceiver is a webhook endpoint for trying the service out:
// it verifies each POST's Standard Webhooks signature with your signing
// secret and prints the event.
//
//	WEBHOOK_SECRET=$(curl -s -H "Authorization: Bearer $KEY" $BASE/v1/webhook-secret | sed 's/.*"\(whsec_[^"]*\)".*/\1/') \
//	  go run ./scripts/webhookreceiver -listen 127.0.0.1:9000
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := realMain(ctx, os.Args[1:], os.Getenv, os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "webhookreceiver:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string, getenv func(string) string, out io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("webhookreceiver", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	whsec := secret.New(getenv("WEBHOOK_SECRET"))
	if whsec.Empty() {
		return errors.New("set WEBHOOK_SECRET to your signing secret (GET /v1/webhook-secret)")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler(whsec, out), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(out, "listening on http://%s/hook\n", ln.Addr())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func handler(whsec secret.Secret, out io.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read error", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(whsec, r.Header, body, webhook.DefaultTolerance, time.Now()); err != nil {
			fmt.Fprintf(out, "REJECTED %s: %v\n", r.Header.Get(webhook.HeaderID), err)
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				DeploymentID string  `json:"deployment_id"`
				Status       string  `json:"status"`
				EndpointURL  *string `json:"endpoint_url"`
				Error        *string `json:"error"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		line := fmt.Sprintf("verified %s id=%s deployment=%s status=%s", ev.Type, r.Header.Get(webhook.HeaderID), ev.Data.DeploymentID, ev.Data.Status)
		if ev.Data.EndpointURL != nil {
			line += " endpoint_url=" + *ev.Data.EndpointURL
		}
		if ev.Data.Error != nil {
			line += " error=" + *ev.Data.Error
		}
		fmt.Fprintln(out, line)
		w.WriteHeader(http.StatusNoContent)
	})
}
