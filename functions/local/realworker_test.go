package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/openapi/openapitest"
)

// inferenceEnv returns the worker's environment (VISGATE_INFERENCE_VENV,
// VISGATE_TINY_MODELS) or skips; REQUIRE_INFERENCE=1 turns the skip into a
// failure (CI installs the environment).
func inferenceEnv(t *testing.T) (venv, tiny string) {
	t.Helper()
	venv, tiny = os.Getenv("VISGATE_INFERENCE_VENV"), os.Getenv("VISGATE_TINY_MODELS")
	if venv != "" && tiny != "" {
		return venv, tiny
	}
	msg := "VISGATE_INFERENCE_VENV or VISGATE_TINY_MODELS is unset: run `make inference-env` and " +
		"`eval \"$(scripts/inference-env.sh --if-present)\"` to run the real inference worker"
	if os.Getenv("REQUIRE_INFERENCE") == "1" {
		t.Fatal(msg + " (REQUIRE_INFERENCE=1)")
	}
	t.Skip(msg)
	return "", ""
}

// TestRealWorker is the whole path with the real worker, GPU-free: POST a
// tiny real model, the RunPod simulator starts inference/ as a process, it
// downloads from the Hub simulator, reports progress, loads, warms up and
// calls back; the deployment turns ready, the webhook goes out, and
// POST {endpoint_url}/runsync with the user's RunPod key reaches the worker.
func TestRealWorker(t *testing.T) {
	venv, tiny := inferenceEnv(t)
	if testing.Short() {
		t.Skip("end-to-end")
	}
	runTinyModels(t, map[string]string{"VISGATE_INFERENCE_VENV": venv, "VISGATE_TINY_MODELS": tiny}, nil)
}

// tinyRun is one tiny model's deployment, ready, seen from the test.
type tinyRun struct {
	model      string
	dep        map[string]any // GET of the ready deployment
	endpointID string
}

// runTinyModels deploys every tiny model on a local server with the
// simulators and the given worker env, checks each through /runsync, and
// calls ready (if not nil) for each while its worker still runs. It
// returns the server's log.
func runTinyModels(t *testing.T, workerEnv map[string]string, ready func(t *testing.T, r tinyRun)) string {
	t.Helper()
	rcv := newReceiver(t)
	const apiKey = "key-real-worker-0123456789"
	env := map[string]string{
		"PORT": "0", "DATA_DIR": t.TempDir(), "SIMULATE": "1", "WEBHOOK_ALLOW_PRIVATE": "1",
		"API_KEYS": apiKey, "POLL_INTERVAL": "200ms", "RATE_LIMIT_PER_MINUTE": "100000", // GET is polled every 50 ms
	}
	for k, v := range workerEnv {
		env[k] = v
	}
	srv := startServer(t, env)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server and worker logs:\n%s", srv.logs.String())
		}
	})
	c := &client{t: t, base: srv.base, v: openapitest.NewValidator(t)}

	// deploy POSTs model and waits for ready, checking what GET shows on
	// the way; it returns the ready deployment.
	deploy := func(t *testing.T, model string) map[string]any {
		t.Helper()
		create := fmt.Sprintf(`{"hf_model_id":%q,"user_runpod_key":%q,"user_webhook_url":%q}`, model, runpodKey, rcv.URL+"/hook")
		code, _, body := c.do("POST", "/v1/deployments", apiKey, []byte(create), nil)
		if code != 202 {
			t.Fatalf("POST = %d %s", code, body)
		}
		id := decode(t, body)["deployment_id"].(string)
		start := time.Now()
		phases := map[string]bool{}
		var dep map[string]any
		waitFor(t, model+" ready", 5*time.Minute, func() bool {
			_, _, body := c.do("GET", "/v1/deployments/"+id, apiKey, nil, nil)
			dep = decode(t, body)
			if dep["status"] == "failed" {
				t.Fatalf("deployment failed: %s", body)
			}
			if p, ok := dep["progress"].(map[string]any); ok {
				phases[p["phase"].(string)] = true
			}
			return dep["status"] == "ready"
		})
		// Progress: the download's bytes, and a log line per phase.
		p, _ := dep["progress"].(map[string]any)
		if p == nil || p["phase"] != "ready" || p["bytes_total"].(float64) <= 0 || p["bytes_done"] != p["bytes_total"] {
			t.Errorf("progress of the ready deployment = %v", dep["progress"])
		}
		var logText []string
		for _, l := range dep["logs"].([]any) {
			logText = append(logText, l.(map[string]any)["message"].(string))
		}
		all := strings.Join(logText, "\n")
		for _, want := range []string{"Downloading model (", "Loading model into GPU memory", "Inference container reported the model ready (download "} {
			if !strings.Contains(all, want) {
				t.Errorf("no log line %q:\n%s", want, all)
			}
		}
		t.Logf("%s ready after %s; phases seen by polling GET: %v", model, time.Since(start).Round(time.Millisecond), phases)
		start = time.Now()
		waitFor(t, "the webhook of "+id, 30*time.Second, func() bool {
			for _, r := range rcv.got() {
				if strings.Contains(string(r.body), `"deployment_id":"`+id+`"`) && strings.Contains(string(r.body), `"type":"deployment.ready"`) {
					return true
				}
			}
			return false
		})
		t.Logf("webhook after %s more", time.Since(start).Round(time.Millisecond))
		if ready != nil {
			ready(t, tinyRun{model: model, dep: dep, endpointID: dep["runpod_endpoint_id"].(string)})
		}
		return dep
	}
	// runsync calls the deployed endpoint, as a user would, with the RunPod key.
	runsync := func(t *testing.T, dep map[string]any, input string) map[string]any {
		t.Helper()
		ep := &client{t: t, base: dep["endpoint_url"].(string)}
		start := time.Now()
		code, _, body := ep.do("POST", "/runsync", runpodKey, []byte(`{"input":`+input+`}`), nil)
		t.Logf("runsync answered in %s", time.Since(start).Round(time.Millisecond))
		if code != 200 {
			t.Fatalf("runsync = %d %s", code, body)
		}
		res := decode(t, body)
		if res["status"] != "COMPLETED" {
			t.Fatalf("runsync = %s", body)
		}
		return res["output"].(map[string]any)
	}

	t.Run(hubsim.TinyTextToImage, func(t *testing.T) {
		dep := deploy(t, hubsim.TinyTextToImage)
		out := runsync(t, dep, `{"prompt":"a red square","width":64,"height":64,"num_inference_steps":2}`)
		images, _ := out["images"].([]any)
		if len(images) != 1 {
			t.Fatalf("output = %v, want one image", out)
		}
		raw, err := base64.StdEncoding.DecodeString(images[0].(string))
		if err != nil {
			t.Fatalf("image is not base64: %v", err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("image is not a PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 64 {
			t.Errorf("image is %dx%d, want 64x64", b.Dx(), b.Dy())
		}
	})
	t.Run(hubsim.TinySentenceEmbeddings, func(t *testing.T) {
		dep := deploy(t, hubsim.TinySentenceEmbeddings)
		out := runsync(t, dep, `{"inputs":["a red square","a blue circle","the same red square"]}`)
		vecs, _ := out["embeddings"].([]any)
		if len(vecs) != 3 {
			t.Fatalf("output = %v, want 3 vectors", out)
		}
		dim := len(vecs[0].([]any))
		for i, v := range vecs {
			if n := len(v.([]any)); n == 0 || n != dim {
				t.Errorf("vector %d has %d values, want %d (> 0)", i, n, dim)
			}
		}
	})
	// No secret reached a response or a log line.
	for _, s := range []string{runpodKey} {
		if strings.Contains(srv.logs.String(), s) {
			t.Errorf("the logs hold the RunPod key")
		}
		for _, b := range c.seen {
			if strings.Contains(b, s) {
				t.Errorf("a response holds the RunPod key: %s", b)
			}
		}
	}
	return srv.logs.String()
}
