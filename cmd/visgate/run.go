package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// job is RunPod's answer to /runsync, /run and /status.
type job struct {
	ID     string          `json:"id"`
	Status string          `json:"status"`
	Output json.RawMessage `json:"output"`
	Error  json.RawMessage `json:"error"`
}

func (a *app) runCmd() *cobra.Command {
	var (
		prompt, negative, audio, input, outDir string
		texts                                  []string
		width, height, steps, numImages        int
		seed                                   int64
		timeout                                time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run ID",
		Short: "Call a ready deployment's endpoint with your RunPod key",
		Long: `Call a ready deployment's endpoint through RunPod's job API (/runsync, then
/status while the job runs), with your RunPod API key. The input is the task's:
  --prompt TEXT   text-to-image: writes each image to a PNG file (--out-dir)
  --text TEXT     embeddings and classifiers (repeatable): prints vectors or labels
  --audio FILE    speech recognition: prints the text
  --input JSON    any job input, as is`,
		Example: `  visgate run dep_2026_0a1b2c3d --prompt "a red fox in the snow" --width 512 --height 512
  visgate run dep_2026_0a1b2c3d --text "a red fox" --text "a white cat"
  visgate run dep_2026_0a1b2c3d --audio speech.wav`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if err := a.needAPIKey(); err != nil {
				return err
			}
			if err := a.needRunPodKey(); err != nil {
				return err
			}
			fs := cmd.Flags()
			given := 0
			for _, f := range []string{"prompt", "text", "audio", "input"} {
				if fs.Changed(f) {
					given++
				}
			}
			if given != 1 {
				return usagef("give one of --prompt, --text, --audio or --input")
			}
			var in any
			switch {
			case fs.Changed("prompt"):
				m := map[string]any{"prompt": prompt}
				for name, v := range map[string]int{"width": width, "height": height, "num_inference_steps": steps, "num_images": numImages} {
					if v != 0 {
						m[name] = v
					}
				}
				if fs.Changed("seed") {
					m["seed"] = seed
				}
				if negative != "" {
					m["negative_prompt"] = negative
				}
				in = m
			case fs.Changed("text"):
				in = map[string]any{"inputs": texts}
			case fs.Changed("audio"):
				b, err := os.ReadFile(audio)
				if err != nil {
					return usagef("--audio: %v", err)
				}
				in = map[string]any{"audio": base64.StdEncoding.EncodeToString(b)}
			default:
				if err := json.Unmarshal([]byte(input), &in); err != nil {
					return usagef("--input is not JSON: %v", err)
				}
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			var d deploymentView
			if _, err := a.api.do(ctx, "GET", deploymentPath(pos[0]), nil, nil, &d); err != nil {
				return err
			}
			if d.EndpointURL == nil || (d.Status != "ready" && d.Status != "webhook_failed") {
				return fmt.Errorf("%s is %s: %w", d.ID, d.Status, errNoEndpoint)
			}
			j, err := a.callEndpoint(ctx, *d.EndpointURL, in)
			if err != nil {
				if ctx.Err() != nil && timeout > 0 && cmd.Context().Err() == nil {
					return &exitStatus{exitTimeout}
				}
				return err
			}
			if j.Status != "COMPLETED" {
				if a.output == "json" {
					_ = a.printJSON(j)
				}
				fmt.Fprintf(a.errOut, "%s job %s %s: %s\n", a.paint("31", "failed"), j.ID, j.Status, string(j.Error))
				return &exitStatus{exitFailed}
			}
			return a.printJobOutput(j, d.ID, outDir)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&prompt, "prompt", "", "text-to-image: the prompt; the images go to PNG files")
	fs.StringVar(&negative, "negative-prompt", "", "text-to-image: what to avoid")
	fs.IntVar(&width, "width", 0, "text-to-image: width in pixels (multiple of 8)")
	fs.IntVar(&height, "height", 0, "text-to-image: height in pixels (multiple of 8)")
	fs.IntVar(&steps, "steps", 0, "text-to-image: num_inference_steps")
	fs.IntVar(&numImages, "num-images", 0, "text-to-image: how many images (1..4)")
	fs.Int64Var(&seed, "seed", 0, "text-to-image: the seed")
	fs.StringVar(&outDir, "out-dir", ".", "where the images are written")
	fs.StringArrayVar(&texts, "text", nil, "a text to embed or classify (repeatable)")
	fs.StringVar(&audio, "audio", "", "speech recognition: an audio file")
	fs.StringVar(&input, "input", "", "the job's input as JSON")
	fs.DurationVar(&timeout, "timeout", 0, "give up after this long (exit 5); 0 waits for the job")
	return cmd
}

// callEndpoint runs a job: /runsync, then /status until it is done.
func (a *app) callEndpoint(ctx context.Context, endpoint string, input any) (*job, error) {
	endpoint = strings.TrimRight(endpoint, "/")
	j := &job{}
	if err := a.runpod(ctx, "POST", endpoint+"/runsync", map[string]any{"input": input}, j); err != nil {
		return nil, err
	}
	tick := time.NewTicker(a.pollInterval)
	defer tick.Stop()
	for j.Status == "IN_QUEUE" || j.Status == "IN_PROGRESS" {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		id := j.ID
		if err := a.runpod(ctx, "GET", endpoint+"/status/"+url.PathEscape(id), nil, j); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// runpod calls the user's RunPod endpoint with the user's RunPod key.
func (a *app) runpod(ctx context.Context, method, u string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode job: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+a.runpodKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("call endpoint: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("call endpoint: read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return &apiError{Status: resp.StatusCode, Message: "RunPod endpoint: " + msg}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("call endpoint: decode answer: %w", err)
	}
	return nil
}

// printJobOutput writes images to files and prints texts, labels and
// vectors; with --output json, the job and the files as one document.
func (a *app) printJobOutput(j *job, id, outDir string) error {
	var out struct {
		Images      []string          `json:"images"`
		Text        *string           `json:"text"`
		Embeddings  []json.RawMessage `json:"embeddings"`
		Predictions json.RawMessage   `json:"predictions"`
	}
	_ = json.Unmarshal(j.Output, &out) // any other output is printed as is
	var files []string
	for i, img := range out.Images {
		b, err := base64.StdEncoding.DecodeString(img)
		if err != nil {
			return fmt.Errorf("image %d is not base64: %w", i, err)
		}
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return fmt.Errorf("out dir: %w", err)
		}
		name := filepath.Join(outDir, fmt.Sprintf("%s-%s-%d.png", id, j.ID, i))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return fmt.Errorf("write image: %w", err)
		}
		files = append(files, name)
	}
	if a.output == "json" {
		return a.printJSON(struct {
			JobID  string          `json:"job_id"`
			Status string          `json:"status"`
			Files  []string        `json:"files,omitempty"`
			Output json.RawMessage `json:"output"`
		}{j.ID, j.Status, files, j.Output})
	}
	switch {
	case len(files) > 0:
		for _, f := range files {
			fmt.Fprintln(a.out, f)
		}
	case out.Text != nil:
		fmt.Fprintln(a.out, *out.Text)
	case out.Embeddings != nil:
		for _, v := range out.Embeddings {
			fmt.Fprintln(a.out, compact(v))
		}
	case out.Predictions != nil:
		var preds []json.RawMessage
		if json.Unmarshal(out.Predictions, &preds) == nil {
			for _, p := range preds {
				fmt.Fprintln(a.out, compact(p))
			}
		} else {
			fmt.Fprintln(a.out, compact(out.Predictions))
		}
	default:
		fmt.Fprintln(a.out, compact(j.Output))
	}
	return nil
}

func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}
