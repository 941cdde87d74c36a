// Package localsim runs the Hugging Face Hub and RunPod simulators for the
// local commands: `make run` (functions/local) and `make dev` (functions/dev)
// with SIMULATE=1. It reads no environment: the commands load the
// configuration (config.Load), start the simulators for it, and Apply
// points it at them. The deployed functions never link it: they reach the
// real services at HF_API_URL and RUNPOD_API_URL, and refuse SIMULATE.
package localsim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/workerenv"
)

// ImageInference is the inference worker's image name in a simulated run
// when INFERENCE_IMAGE is unset.
const ImageInference = "visgate/inference-worker:local"

// MaxPollInterval caps POLL_INTERVAL in a simulated run, so a deployment is
// ready in seconds.
const MaxPollInterval = time.Second

// Simulators are a running Hub simulator (any token accepted) and RunPod
// simulator (any key accepted), on loopback.
type Simulators struct {
	Hub    *hubsim.Server
	RunPod *runpodsim.Server
	// Image is the inference worker's image (INFERENCE_IMAGE, or
	// ImageInference); RealWorkers says whether the RunPod simulator runs
	// it as real processes (see Start).
	Image       string
	RealWorkers bool
}

// Start starts both simulators for cfg (loaded with SIMULATE=1), the
// simulated workers booting in cfg.SimulateBootDelay. The Hub simulator
// also serves the tiny real models in cfg.Local.TinyModels. When
// cfg.Local.InferenceVenv names the inference worker's Python environment,
// the RunPod simulator runs the real worker (inference/ of the repository
// around the working directory) as a local process for each worker of an
// endpoint whose image is the inference image, and endpoint URLs point at
// the simulator, so that POST {endpoint_url}/runsync reaches the worker;
// otherwise its workers are simulated. When cfg.Local.BuiltImage names the
// worker's built image (`make inference-image`), each real worker runs in
// a container of it instead (buildah, as root), with
// cfg.Local.RunPodVolume, if set, mounted at /runpod-volume. Apply then
// points cfg at them.
func Start(log *slog.Logger, cfg *config.Config) *Simulators {
	boot := cfg.SimulateBootDelay
	image := cfg.Images.Inference
	if image == "" {
		image = ImageInference
	}
	hub := hubsim.New()
	hub.SetAcceptAnyToken(true)
	var tiny []string // the models the Hub simulator has real files for
	if dir := cfg.Local.TinyModels; dir != "" {
		if ids, err := hub.LoadDir(dir); err != nil {
			log.Warn("the Hub simulator serves no tiny models", "dir", dir, "error", err.Error())
		} else {
			log.Info("the Hub simulator serves tiny real models", "models", ids)
			tiny = ids
		}
	}
	// The container's three callbacks take 0.3 of the boot each, as with the
	// simulator's defaults (1 s, 300 ms).
	// Endpoint URLs point at the simulator's job API (the watch step's
	// health checks reach it there), not at RunPod's.
	opts := []runpodsim.Option{runpodsim.WithAnyKey(), runpodsim.WithCallbackClient(&http.Client{Timeout: 10 * time.Second}),
		runpodsim.WithBootDelay(boot), runpodsim.WithCallbackInterval(boot * 3 / 10), runpodsim.WithRequestURLBase("")}
	venv, built := cfg.Local.InferenceVenv, cfg.Local.BuiltImage
	var worker runpodsim.WorkerProcess
	var werr error
	if built != "" {
		worker, werr = workerContainer(built, cfg.Local.RunPodVolume, image, hub.URL, &logWriter{log: log})
		if werr != nil && venv != "" {
			log.Warn("the worker's image is not usable here: real workers from the venv instead", "image", built, "error", werr.Error())
			built = ""
		}
	}
	if built == "" {
		worker, werr = workerProcess(venv, image, hub.URL, &logWriter{log: log})
	}
	// Real workers for the tiny models only: the Hub simulator has no
	// files for the others (stabilityai/sdxl-turbo of the quick test), whose
	// workers stay simulated and reach ready as without the environment.
	worker.Serves = func(env map[string]string) bool { return slices.Contains(tiny, env[workerenv.ModelName]) }
	switch {
	case werr == nil && worker.Container != nil:
		opts = append(opts, runpodsim.WithWorkerProcess(worker), runpodsim.WithRequestURLBase(""))
		log.Info("the RunPod simulator runs the inference worker from its built image for the tiny models (simulated workers for the others)",
			"image", image, "built_image", built, "runpod_volume", worker.Container.Volume)
	case werr == nil:
		opts = append(opts, runpodsim.WithWorkerProcess(worker))
		log.Info("the RunPod simulator runs the inference worker as local processes for the tiny models (simulated workers for the others)", "image", image, "python", worker.Python)
	case built != "":
		log.Warn("simulated inference workers: the worker's image is not usable", "image", built, "error", werr.Error())
	case venv == "":
		log.Info("VISGATE_INFERENCE_VENV is unset: simulated inference workers (`make inference-env` makes real ones possible)")
	default:
		log.Warn("simulated inference workers: the worker's environment is not usable", "error", werr.Error())
	}
	rp := runpodsim.New(opts...)
	log.Debug("simulators listening", "hub", hub.URL, "runpod", rp.URL)
	return &Simulators{Hub: hub, RunPod: rp, Image: image, RealWorkers: werr == nil}
}

// workerProcess is how the RunPod simulator runs the inference worker: the
// venv's Python on the repository's inference/src.
func workerProcess(venv, image, hubURL string, out io.Writer) (runpodsim.WorkerProcess, error) {
	if venv == "" {
		return runpodsim.WorkerProcess{}, errors.New("VISGATE_INFERENCE_VENV is unset")
	}
	root, err := repoRoot()
	if err != nil {
		return runpodsim.WorkerProcess{}, err
	}
	p := runpodsim.WorkerProcess{
		Image:      image,
		Python:     filepath.Join(venv, "bin", "python"),
		PythonPath: filepath.Join(root, "inference", "src"),
		HubURL:     hubURL,
		Log:        out,
		Env:        map[string]string{workerenv.AllowCPU: "1"}, // no GPU here
	}
	return p, runpodsim.CheckWorkerProcess(p)
}

// workerContainer is how the RunPod simulator runs the inference worker
// from its built image (`make inference-image`): a container per worker,
// with buildah, and the host directory volume (if any) at /runpod-volume.
func workerContainer(built, volume, image, hubURL string, out io.Writer) (runpodsim.WorkerProcess, error) {
	p := runpodsim.WorkerProcess{
		Image:     image,
		HubURL:    hubURL,
		Log:       out,
		Env:       map[string]string{workerenv.AllowCPU: "1"}, // no GPU here
		Container: &runpodsim.Container{Image: built, Volume: volume},
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

// Close stops both simulators.
func (s *Simulators) Close() {
	s.Hub.Close()
	s.RunPod.Close()
}

// Apply points cfg at the simulators: their base URLs, a poll interval
// of at most MaxPollInterval (a deployment is ready in seconds), and the
// inference image when cfg names none (the simulator runs any image).
// Webhooks are as Load made them of SIMULATE=1: to loopback and private
// addresses, and to nothing else unless WEBHOOK_ALLOW_PUBLIC=1.
func (s *Simulators) Apply(cfg *config.Config) {
	cfg.HFAPIURL, cfg.RunPodAPIURL = s.Hub.URL, s.RunPod.URL
	cfg.PollInterval = min(cfg.PollInterval, MaxPollInterval)
	if cfg.Images.Inference == "" {
		cfg.Images.Inference = s.Image
	}
}

// Env is what a process that is not told SIMULATE (make dev's function
// processes, which refuse it) must be given to load the simulated run's
// configuration cfg (after Apply): the simulators' URLs, the poll
// interval, the inference image, and the webhooks SIMULATE=1 allows.
func Env(cfg *config.Config) map[string]string {
	public := "1"
	if cfg.WebhookPrivateOnly {
		public = "0"
	}
	return map[string]string{
		"HF_API_URL": cfg.HFAPIURL, "RUNPOD_API_URL": cfg.RunPodAPIURL, "POLL_INTERVAL": cfg.PollInterval.String(),
		"INFERENCE_IMAGE": cfg.Images.Inference, "WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_ALLOW_PUBLIC": public,
	}
}
