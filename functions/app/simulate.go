package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
)

// SimulatedInferenceImage is the inference worker's image name in
// SIMULATE=1 runs when INFERENCE_IMAGE is unset.
const SimulatedInferenceImage = "visgate/inference-worker:local"

// simulators are the Hub and RunPod simulators of a SIMULATE=1 run.
type simulators struct {
	hubURL, runpodURL string
	images            config.Images
	close             func()
}

// startSimulators starts the Hub simulator (with the tiny real models when
// VISGATE_TINY_MODELS names them) and the RunPod simulator, which runs the
// real inference worker (inference/) as local processes when
// VISGATE_INFERENCE_VENV names its Python environment, and simulated
// workers otherwise.
func startSimulators(cfg *config.Config, log *slog.Logger) *simulators {
	images := cfg.Images
	if images.Inference == "" {
		images.Inference = SimulatedInferenceImage
	}
	hub := hubsim.New()
	hub.SetAcceptAnyToken(true)
	if cfg.TinyModels != "" {
		if ids, err := hub.LoadDir(cfg.TinyModels); err != nil {
			log.Warn("the Hub simulator serves no tiny models", "dir", cfg.TinyModels, "error", err.Error())
		} else {
			log.Info("the Hub simulator serves tiny real models", "models", ids)
		}
	}
	// The container's three callbacks take 0.3 of the boot each, as with
	// the simulator's defaults (1 s, 300 ms).
	opts := []runpodsim.Option{runpodsim.WithAnyKey(), runpodsim.WithCallbackClient(&http.Client{Timeout: 10 * time.Second}),
		runpodsim.WithBootDelay(cfg.SimulateBootDelay), runpodsim.WithCallbackInterval(cfg.SimulateBootDelay * 3 / 10)}
	worker, err := workerProcess(cfg, images.Inference, hub.URL, &logWriter{log: log})
	switch {
	case err == nil:
		// Endpoints get the simulator's own URLs, so that
		// POST {endpoint_url}/runsync reaches the worker through it.
		opts = append(opts, runpodsim.WithWorkerProcess(worker), runpodsim.WithRequestURLBase(""))
		log.Info("the RunPod simulator runs the inference worker as local processes", "image", images.Inference, "python", worker.Python)
	case cfg.InferenceVenv == "":
		log.Info("VISGATE_INFERENCE_VENV is unset: simulated inference workers (run `make inference-env` for real ones)")
	default:
		log.Warn("simulated inference workers: the worker's environment is not usable", "error", err.Error())
	}
	rp := runpodsim.New(opts...)
	log.Debug("simulators listening", "hub", hub.URL, "runpod", rp.URL)
	return &simulators{hubURL: hub.URL, runpodURL: rp.URL, images: images, close: func() { rp.Close(); hub.Close() }}
}

// workerProcess is how the RunPod simulator runs the inference worker: the
// venv's Python on the repository's inference/src.
func workerProcess(cfg *config.Config, image, hubURL string, out io.Writer) (runpodsim.WorkerProcess, error) {
	if cfg.InferenceVenv == "" {
		return runpodsim.WorkerProcess{}, errors.New("VISGATE_INFERENCE_VENV is unset")
	}
	root, err := repoRoot()
	if err != nil {
		return runpodsim.WorkerProcess{}, err
	}
	p := runpodsim.WorkerProcess{
		Image:      image,
		Python:     filepath.Join(cfg.InferenceVenv, "bin", "python"),
		PythonPath: filepath.Join(root, "inference", "src"),
		HubURL:     hubURL,
		Log:        out,
	}
	return p, runpodsim.CheckWorkerProcess(p)
}

// repoRoot is the nearest directory at or above the working directory that
// holds go.mod and inference/ (make run and go test run inside the
// repository).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "inference")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no repository with an inference/ folder at or above the working directory")
		}
		dir = parent
	}
}

// logWriter turns the worker processes' output (whole lines, prefixed
// with the endpoint and worker by runpodsim) into log records.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		if s := string(bytes.TrimRight(line, "\r\n")); s != "" {
			w.log.Info("inference worker", "line", s)
		}
	}
	return len(p), nil
}
