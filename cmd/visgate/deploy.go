package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// limitFlags are the flags of create and PATCH that set scaling and limits,
// named after the API's fields.
type limitFlags struct {
	minWorkers, maxWorkers int
	idleTimeout            string
	maxSpend               float64
	ttl                    string
	expiresAt              string
}

func (l *limitFlags) add(fs *pflag.FlagSet) {
	fs.IntVar(&l.minWorkers, "min-workers", 0, "min_workers: workers kept running (0..10)")
	fs.IntVar(&l.maxWorkers, "max-workers", 0, "max_workers: most workers (1..100)")
	fs.StringVar(&l.idleTimeout, "idle-timeout", "", "idle_timeout_seconds: seconds, or a duration such as 2m (5s..1h)")
	fs.Float64Var(&l.maxSpend, "max-spend", 0, "max_spend_usd: delete the deployment once it has cost this much (USD)")
	fs.StringVar(&l.ttl, "ttl", "", "ttl_seconds: seconds, or a duration such as 24h; delete the deployment after it")
	fs.StringVar(&l.expiresAt, "expires-at", "", "expires_at: delete the deployment at this RFC 3339 time")
}

// fields returns the API fields of the flags that were given.
func (l *limitFlags) fields(fs *pflag.FlagSet, body map[string]any) error {
	if fs.Changed("min-workers") {
		body["min_workers"] = l.minWorkers
	}
	if fs.Changed("max-workers") {
		body["max_workers"] = l.maxWorkers
	}
	if fs.Changed("idle-timeout") {
		s, err := seconds(l.idleTimeout)
		if err != nil {
			return usagef("--idle-timeout: %v", err)
		}
		body["idle_timeout_seconds"] = s
	}
	if fs.Changed("max-spend") {
		body["max_spend_usd"] = l.maxSpend
	}
	if fs.Changed("ttl") {
		s, err := seconds(l.ttl)
		if err != nil {
			return usagef("--ttl: %v", err)
		}
		body["ttl_seconds"] = s
	}
	if fs.Changed("expires-at") {
		if _, err := time.Parse(time.RFC3339, l.expiresAt); err != nil {
			return usagef("--expires-at must be an RFC 3339 time such as 2027-01-31T12:00:00Z")
		}
		body["expires_at"] = l.expiresAt
	}
	if fs.Changed("ttl") && fs.Changed("expires-at") {
		return usagef("give --ttl or --expires-at, not both")
	}
	return nil
}

// seconds reads a whole number of seconds or a Go duration.
func seconds(s string) (int, error) {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		return n, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d%time.Second != 0 {
		return 0, fmt.Errorf("%q is neither whole seconds nor a duration such as 90s, 10m or 24h", s)
	}
	return int(d / time.Second), nil
}

func (a *app) deployCmd() *cobra.Command {
	var (
		lim                        limitFlags
		provider, gpuTier, hfToken string
		webhook, idemKey           string
		wait                       bool
		timeout                    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "deploy MODEL",
		Short: "Deploy a model: a Hugging Face id (org/name) or a catalogue name (see visgate models)",
		Long: `Deploy a model. MODEL with a slash is a Hugging Face id (hf_model_id), without one
a catalogue name (model_name; --provider picks the catalogue). The answer comes at
once; --wait follows the deployment: each phase, a progress bar with bytes, rate and
time left during the download, then the endpoint, its price and a call to paste.
Ctrl-C stops waiting; the deployment goes on (visgate rm deletes it).`,
		Example: `  visgate deploy visgate-tiny/text-to-image --wait
  visgate deploy stabilityai/sdxl-turbo --gpu A40 --ttl 24h --max-spend 5 --wait
  visgate deploy veo3 --provider fal --webhook https://example.com/hook`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if err := a.needAPIKey(); err != nil {
				return err
			}
			if err := a.needRunPodKey(); err != nil {
				return err
			}
			fs := cmd.Flags()
			body := map[string]any{"user_runpod_key": a.runpodKey}
			model := pos[0]
			switch {
			case strings.Contains(model, "/"):
				if fs.Changed("provider") {
					return usagef("--provider goes with a catalogue name, not with a Hugging Face id")
				}
				body["hf_model_id"] = model
			default:
				body["model_name"] = model
				if fs.Changed("provider") {
					body["provider"] = provider
				}
			}
			if fs.Changed("gpu") {
				body["gpu_tier"] = gpuTier
			}
			if fs.Changed("hf-token") {
				body["hf_token"] = hfToken
			}
			if fs.Changed("webhook") {
				body["user_webhook_url"] = webhook
			}
			if err := lim.fields(fs, body); err != nil {
				return err
			}
			hdr := http.Header{}
			if idemKey != "" {
				hdr.Set("Idempotency-Key", idemKey)
			}
			var created struct {
				ID string `json:"deployment_id"`
			}
			ctx := cmd.Context()
			raw, err := a.api.do(ctx, "POST", "/v1/deployments", body, hdr, &created)
			if err != nil {
				return err
			}
			if !wait {
				if a.output == "json" {
					return a.printJSON(raw)
				}
				fmt.Fprintf(a.out, "%s accepted: follow it with `visgate get %s` or `visgate logs -f %s`\n", created.ID, created.ID, created.ID)
				return nil
			}
			return a.wait(ctx, created.ID, timeout)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&provider, "provider", "", "provider: the catalogue of a model name (see visgate models)")
	fs.StringVar(&gpuTier, "gpu", "", "gpu_tier: a card (A40, H100) or a pool (AMPERE_48); cheapest that fits when absent")
	fs.StringVar(&hfToken, "hf-token", "", "hf_token: Hugging Face token for gated or private models")
	fs.StringVar(&webhook, "webhook", "", "user_webhook_url: an https URL that gets the signed ready/failed/deleted events")
	fs.StringVar(&idemKey, "idempotency-key", "", "Idempotency-Key header: the same key and options return the same deployment")
	fs.BoolVar(&wait, "wait", false, "wait for ready or failed, showing progress")
	fs.DurationVar(&timeout, "timeout", 0, "with --wait: stop waiting after this long (exit 5); 0 waits for ever")
	lim.add(fs)
	return cmd
}

// wait follows a deployment until ready or failed, showing its progress,
// and prints the outcome. It never deletes anything.
func (a *app) wait(ctx context.Context, id string, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errTimeout)
		defer cancel()
	}
	var sh shower
	switch {
	case a.output == "json":
		sh = nopShower{}
	case a.tty:
		sh = newTTYShower(a)
	default:
		sh = &lineShower{a: a}
	}
	d, err := a.follow(ctx, id, sh)
	sh.done()
	if err != nil {
		if errors.Is(context.Cause(ctx), errTimeout) {
			fmt.Fprintf(a.errOut, "visgate: stopped waiting after %s; %s goes on (visgate get %s)\n", timeout, id, id)
			return &exitStatus{exitTimeout}
		}
		if ctx.Err() != nil {
			fmt.Fprintf(a.errOut, "\nvisgate: stopped waiting; %s goes on, nothing was deleted (visgate get %s, visgate rm %s)\n", id, id, id)
			return &exitStatus{exitInterrupted}
		}
		return err
	}
	if a.output == "json" {
		if err := a.printJSON(d.raw); err != nil {
			return err
		}
	} else {
		a.printOutcome(d.view)
	}
	if d.view.Status == "failed" || d.view.Status == "deleted" {
		return &exitStatus{exitFailed}
	}
	return nil
}

var errTimeout = errors.New("--timeout passed")

type fetched struct {
	view deploymentView
	raw  json.RawMessage
}

// follow polls GET until the deployment is terminal, telling sh about
// every new phase, log line and progress report.
func (a *app) follow(ctx context.Context, id string, sh shower) (*fetched, error) {
	seenLogs := 0
	status := ""
	downloaded := false
	tick := time.NewTicker(a.pollInterval)
	defer tick.Stop()
	for {
		var d deploymentView
		raw, err := a.api.do(ctx, "GET", deploymentPath(id), nil, nil, &d)
		if err != nil {
			return nil, err
		}
		// The log lines first, then the download a phase ended (complete),
		// then the new phase: polls may skip phases, the log does not.
		if seenLogs > len(d.Logs) { // the log is bounded: older lines dropped
			seenLogs = 0
		}
		for _, l := range d.Logs[seenLogs:] {
			sh.log(l)
		}
		seenLogs = len(d.Logs)
		p := d.Progress
		showDownload := p != nil && p.BytesTotal > 0 && (p.Phase == "downloading_model" || !downloaded)
		if showDownload && d.Status != "downloading_model" {
			sh.download(p.BytesDone, p.BytesTotal)
			downloaded, showDownload = true, false
		}
		if d.Status != status {
			status = d.Status
			sh.phase(status)
		}
		if showDownload {
			sh.download(p.BytesDone, p.BytesTotal)
			downloaded = p.BytesDone >= p.BytesTotal
		}
		if terminal(d.Status) {
			return &fetched{view: d, raw: raw}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// printOutcome prints a terminal deployment: the endpoint, its price and
// a call to paste, or the error's sentence.
func (a *app) printOutcome(d deploymentView) {
	switch d.Status {
	case "failed":
		fmt.Fprintf(a.errOut, "%s %s: %s\n", a.paint("31", "failed"), d.ID, deref(d.Error))
		return
	case "deleted":
		fmt.Fprintf(a.errOut, "%s %s (%s)\n", a.paint("31", "deleted"), d.ID, deref(d.DeletedReason))
		return
	}
	fmt.Fprintf(a.out, "%s %s  %s", a.paint("32", "ready"), d.ID, d.ModelID)
	if d.GPUAllocated != nil {
		fmt.Fprintf(a.out, " on %s", *d.GPUAllocated)
	}
	fmt.Fprintln(a.out)
	ep := deref(d.EndpointURL)
	fmt.Fprintf(a.out, "endpoint: %s\n", ep)
	if p := d.Price; p != nil {
		fmt.Fprintf(a.out, "price:    %.4f USD per worker-hour (%s); idle %.4f USD/h; at most %.4f USD/h\n",
			p.PerHourUSD, p.Pool, p.IdlePerHourUSD, p.MaxPerHourUSD)
	}
	ex := exampleFor(deref(d.Task))
	fmt.Fprintf(a.out, "call it (with your RunPod key in RUNPOD_API_KEY):\n  visgate run %s %s\n", d.ID, ex.cli)
	fmt.Fprintf(a.out, "  curl -s -X POST %s/runsync -H \"Authorization: Bearer $RUNPOD_API_KEY\" -H 'Content-Type: application/json' -d '{\"input\":%s}'\n",
		ep, ex.input)
}

// example is a call of a task: visgate run's flags and the job input.
type example struct{ cli, input string }

func exampleFor(task string) example {
	switch task {
	case "text-to-image":
		return example{`--prompt "a red fox in the snow"`, `{"prompt":"a red fox in the snow"}`}
	case "automatic-speech-recognition":
		return example{`--audio speech.wav`, `{"audio":"<base64 of speech.wav>"}`}
	case "image-classification":
		return example{`--input '{"image_url":"https://example.com/cat.jpg"}'`, `{"image_url":"https://example.com/cat.jpg"}`}
	case "text-generation", "image-text-to-text", "conversational":
		return example{`--input '{"prompt":"Hello"}'`, `{"prompt":"Hello"}`}
	case "fill-mask":
		return example{`--text "Paris is the [MASK] of France."`, `{"inputs":["Paris is the [MASK] of France."]}`}
	default: // sentence-similarity, feature-extraction, text- and token-classification
		return example{`--text "a red fox" --text "a white cat"`, `{"inputs":["a red fox","a white cat"]}`}
	}
}
