package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
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
	// runsyncResult calls the deployed endpoint, as a user would, with the
	// RunPod key, and returns RunPod's whole answer.
	runsyncResult := func(t *testing.T, dep map[string]any, input string) map[string]any {
		t.Helper()
		ep := &client{t: t, base: dep["endpoint_url"].(string)}
		start := time.Now()
		code, _, body := ep.do("POST", "/runsync", runpodKey, []byte(`{"input":`+input+`}`), nil)
		t.Logf("runsync answered in %s", time.Since(start).Round(time.Millisecond))
		if code != 200 {
			t.Fatalf("runsync = %d %.300s", code, body)
		}
		return decode(t, body)
	}
	// runsync is runsyncResult of a job that must complete; it returns the output.
	runsync := func(t *testing.T, dep map[string]any, input string) map[string]any {
		t.Helper()
		res := runsyncResult(t, dep, input)
		if res["status"] != "COMPLETED" {
			t.Fatalf("runsync = %v", res)
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
		p, _ := out["parameters"].(map[string]any)
		if p["num_inference_steps"] != float64(2) || p["width"] != float64(64) || p["scheduler"] != "DDIMScheduler" || p["seed"] != out["seed"] {
			t.Errorf("parameters = %v", out["parameters"])
		}
		// A 5000-digit seed: FAILED with a sentence, not IN_PROGRESS for ever.
		res := runsyncResult(t, dep, `{"prompt":"a red square","seed":`+strings.Repeat("9", 5000)+`}`)
		if res["status"] != "FAILED" || !strings.Contains(fmt.Sprint(res["error"]), "seed must be a whole number between 0 and 4294967295.") {
			t.Errorf("a 5000-digit seed: %.300v", res)
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
	// Every other family: one tiny model each, one request each.
	t.Run(hubsim.TinySpeechRecognition, func(t *testing.T) {
		dep := deploy(t, hubsim.TinySpeechRecognition)
		out := runsync(t, dep, fmt.Sprintf(`{"audio":%q,"language":"en","return_timestamps":true}`, tinyWAV(16000, 1)))
		if _, ok := out["text"].(string); !ok {
			t.Errorf("output = %v, want a text", out)
		}
		p, _ := out["parameters"].(map[string]any)
		if p["language"] != "en" || p["task"] != "transcribe" || p["return_timestamps"] != true {
			t.Errorf("parameters = %v", out["parameters"])
		}
		if _, ok := out["chunks"].([]any); !ok {
			t.Errorf("output = %v, want chunks", out)
		}
	})
	for _, tc := range []struct {
		model, input string
		n            int
	}{
		{hubsim.TinyTextClassification, `{"inputs":["a red square","hello world"]}`, 2},
		{hubsim.TinyTokenClassification, `{"inputs":"hello red world"}`, 1},
		{hubsim.TinyFillMask, `{"inputs":["a red [MASK]","the [MASK] is small"]}`, 2},
	} {
		t.Run(tc.model, func(t *testing.T) {
			dep := deploy(t, tc.model)
			out := runsync(t, dep, tc.input)
			preds, _ := out["predictions"].([]any)
			if len(preds) != tc.n {
				t.Fatalf("output = %v, want %d predictions", out, tc.n)
			}
			if tr, ok := out["truncated"].([]any); !ok || len(tr) != 0 || out["max_tokens"] != float64(128) {
				t.Errorf("truncated = %v, max_tokens = %v; want [] and 128", out["truncated"], out["max_tokens"])
			}
		})
	}
	t.Run(hubsim.TinyImageClassification, func(t *testing.T) {
		dep := deploy(t, hubsim.TinyImageClassification)
		out := runsync(t, dep, fmt.Sprintf(`{"image":%q}`, tinyPNG(t, 40, 30)))
		preds, _ := out["predictions"].([]any)
		if len(preds) == 0 {
			t.Fatalf("output = %v, want predictions", out)
		}
		for _, p := range preds {
			if label, _ := p.(map[string]any)["label"].(string); label == "" {
				t.Errorf("prediction %v has no label", p)
			}
		}
	})
	t.Run(hubsim.TinyFeatureExtraction, func(t *testing.T) {
		dep := deploy(t, hubsim.TinyFeatureExtraction)
		out := runsync(t, dep, `{"inputs":["a red square","a blue circle"]}`)
		vecs, _ := out["embeddings"].([]any)
		if len(vecs) != 2 || len(vecs[0].([]any)) != 32 || len(vecs[1].([]any)) != 32 {
			t.Fatalf("output = %v, want 2 vectors of 32", out)
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

// tinyWAV is seconds of a 440 Hz tone, 16-bit mono PCM at rate, as base64.
func tinyWAV(rate, seconds int) string {
	n := rate * seconds
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(2 * rate), uint16(2), uint16(16)} {
		_ = binary.Write(&b, le, v)
	}
	b.WriteString("data")
	_ = binary.Write(&b, le, uint32(2*n))
	for i := 0; i < n; i++ {
		_ = binary.Write(&b, le, int16(8000*math.Sin(2*math.Pi*440*float64(i)/float64(rate))))
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// tinyPNG is a w x h red PNG, as base64.
func tinyPNG(t *testing.T, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			img.Set(x, y, color.RGBA{R: 200, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}
