package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/syncbuf"
)

// localServer is `SIMULATE=1 make run`: the local server built from
// ./functions/local, with the RunPod and Hub simulators, on a free port.
type localServer struct {
	base string
	logs *syncbuf.Buffer
}

func startLocalServer(t *testing.T, extraEnv ...string) *localServer {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: builds and starts the local server")
	}
	bin := filepath.Join(t.TempDir(), "orchestrator")
	if out, err := exec.Command("go", "build", "-o", bin, "../../functions/local").CombinedOutput(); err != nil {
		t.Fatalf("go build ./functions/local: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"PORT=0", "DATA_DIR=" + t.TempDir(), "SIMULATE=1", "API_KEYS=" + testAPIKey,
		"POLL_INTERVAL=200ms", "RATE_LIMIT_PER_MINUTE=100000",
	}, extraEnv...)
	logs := &syncbuf.Buffer{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = logs.Write(append(append([]byte{}, line...), '\n'))
			var l struct {
				Message string `json:"message"`
				Addr    string `json:"addr"`
			}
			if !sent && json.Unmarshal(line, &l) == nil && l.Message == "listening" {
				addr <- l.Addr
				sent = true
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})
	select {
	case a := <-addr:
		return &localServer{base: a, logs: logs}
	case <-time.After(60 * time.Second):
		t.Fatalf("the local server did not start:\n%s", logs.String())
	}
	return nil
}

// TestAgainstLocalServer drives every command against the local server
// with the simulators: deploy --wait with no webhook, get, ls, logs,
// patch, gpus, models, rm, with text and JSON output.
func TestAgainstLocalServer(t *testing.T) {
	srv := startLocalServer(t)
	c := newCLI(srv.base)
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := c.text(t, args...)
		if code != 0 {
			t.Fatalf("visgate %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	out := must("deploy", "stabilityai/sdxl-turbo", "--gpu", "A40", "--max-workers", "2", "--ttl", "1h", "--wait", "--timeout", "2m")
	m := regexp.MustCompile(`(?m)^ready (dep_\d{4}_[0-9a-f]{8})  stabilityai/sdxl-turbo`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("deploy --wait printed no ready line:\n%s", out)
	}
	id := m[1]
	// The first poll may come after validating (polls may skip phases);
	// its log line never is.
	for _, want := range []string{"INFO Validating Hugging Face model\n", "status ready\n", "visgate run " + id + " --prompt"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy --wait output lacks %q:\n%s", want, out)
		}
	}

	var got map[string]any
	if err := json.Unmarshal([]byte(must("get", id, "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if got["status"] != "ready" || got["task"] != "text-to-image" || got["webhook_url"] != nil {
		t.Errorf("get -o json: status %v, task %v, webhook_url %v", got["status"], got["task"], got["webhook_url"])
	}
	if ep, _ := got["endpoint_url"].(string); ep == "" || !strings.Contains(out, "\nendpoint: "+ep+"\n") {
		t.Errorf("deploy --wait did not print the endpoint %v:\n%s", got["endpoint_url"], out)
	}
	if out := must("get", id); !strings.Contains(out, "webhook:   none configured") || !strings.Contains(out, "task:      text-to-image") {
		t.Errorf("get:\n%s", out)
	}
	if out := must("ls"); !regexp.MustCompile(id + `\s+ready\s+stabilityai/sdxl-turbo`).MatchString(out) {
		t.Errorf("ls:\n%s", out)
	}
	if out := must("logs", id); !strings.Contains(out, "INFO    Validating Hugging Face model") {
		t.Errorf("logs:\n%s", out)
	}
	if out := must("patch", id, "--max-workers", "3", "--idle-timeout", "2m"); !strings.Contains(out, "max 3 workers, idle 120s") {
		t.Errorf("patch:\n%s", out)
	}
	if out := must("gpus"); !regexp.MustCompile(`AMPERE_48\s+48 GB`).MatchString(out) {
		t.Errorf("gpus:\n%s", out)
	}
	if out := must("models", "-o", "json"); !strings.Contains(out, `"model_name": "veo3"`) {
		t.Errorf("models -o json:\n%s", out)
	}
	if out := must("rm", id); out != "deleted "+id+"\n" {
		t.Errorf("rm = %q", out)
	}
	if out := must("get", id); !strings.Contains(out, "status:    deleted") {
		t.Errorf("get after rm:\n%s", out)
	}
	if code, _, errOut := c.text(t, "get", "dep_2026_00000000"); code != exitRefused || !strings.Contains(errOut, "HTTP 404") {
		t.Errorf("get of an unknown id: exit %d, %s", code, errOut)
	}
	if code, _, errOut := c.text(t, "deploy", "stabilityai/sdxl-turbo", "--gpu", "NOPE"); code != exitRefused || !strings.Contains(errOut, "gpu_tier") {
		t.Errorf("deploy with a bad GPU: exit %d, %s", code, errOut)
	}
	if strings.Contains(srv.logs.String(), testRunPodKey) {
		t.Errorf("the server logged the RunPod key")
	}
}

// TestDeployWaitRunRealWorker is the acceptance test: against the local
// server with the simulators and the real inference worker,
// `visgate deploy visgate-tiny/text-to-image --wait`, then `visgate run`
// writes a PNG, then `visgate rm`.
func TestDeployWaitRunRealWorker(t *testing.T) {
	venv, tiny := os.Getenv("VISGATE_INFERENCE_VENV"), os.Getenv("VISGATE_TINY_MODELS")
	if venv == "" || tiny == "" {
		msg := "VISGATE_INFERENCE_VENV or VISGATE_TINY_MODELS is unset: run `make inference-env` and " +
			"`eval \"$(scripts/inference-env.sh --if-present)\"` to run the real inference worker"
		if os.Getenv("REQUIRE_INFERENCE") == "1" {
			t.Fatal(msg + " (REQUIRE_INFERENCE=1)")
		}
		t.Skip(msg)
	}
	srv := startLocalServer(t, "VISGATE_INFERENCE_VENV="+venv, "VISGATE_TINY_MODELS="+tiny)
	c := newCLI(srv.base)
	code, out, errOut := c.text(t, "deploy", "visgate-tiny/text-to-image", "--wait", "--timeout", "5m")
	if code != 0 {
		t.Fatalf("deploy --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("deploy --wait printed:\n%s", out)
	m := regexp.MustCompile(`(?m)^ready (dep_\d{4}_[0-9a-f]{8})  visgate-tiny/text-to-image`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ready line:\n%s", out)
	}
	id := m[1]
	for _, want := range []string{"status downloading_model\n", "status loading_model\n", "download ", "(100%)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy --wait output lacks %q:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	code, out, errOut = c.text(t, "run", id, "--prompt", "a red square", "--width", "64", "--height", "64", "--steps", "2", "--out-dir", dir)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	files := strings.Fields(out)
	if len(files) != 1 || filepath.Dir(files[0]) != dir {
		t.Fatalf("run printed %q, want one file in %s", out, dir)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", files[0], err)
	}
	if r := img.Bounds(); r.Dx() != 64 || r.Dy() != 64 {
		t.Errorf("the image is %dx%d, want 64x64", r.Dx(), r.Dy())
	}
	if code, out, errOut := c.text(t, "rm", id); code != 0 || out != "deleted "+id+"\n" {
		t.Errorf("rm: exit %d, %q %s", code, out, errOut)
	}
}
