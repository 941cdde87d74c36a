package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/huggingface/hubsim"
)

// inferenceImage returns the worker's built image (VISGATE_INFERENCE_IMAGE,
// `make inference-image`) or skips with why; REQUIRE_IMAGE=1 (CI) turns
// the skip into a failure.
func inferenceImage(t *testing.T) string {
	t.Helper()
	img := os.Getenv("VISGATE_INFERENCE_IMAGE")
	msg := ""
	switch {
	case img == "":
		msg = "VISGATE_INFERENCE_IMAGE is unset: run `make inference-image` (buildah as root) and eval its output to run the worker from its image"
	case os.Geteuid() != 0:
		msg = "buildah runs the worker's image here as root only"
	case os.Getenv("VISGATE_INFERENCE_IMAGE_ENGINE") != "" && os.Getenv("VISGATE_INFERENCE_IMAGE_ENGINE") != "buildah":
		msg = "the worker's image was built with " + os.Getenv("VISGATE_INFERENCE_IMAGE_ENGINE") +
			"; the test runs it with buildah (make test builds it with INFERENCE_IMAGE_ENGINE=buildah)"
	default:
		if _, err := exec.LookPath("buildah"); err != nil {
			msg = "buildah is not installed (Debian: apt-get install buildah): it runs the worker's image"
		} else if out, err := exec.Command("buildah", "info", "--format", "{{.store.GraphDriverName}}").Output(); err != nil || strings.TrimSpace(string(out)) != "overlay" {
			msg = fmt.Sprintf("buildah's storage driver is %q, not overlay: the test reads what the worker wrote from the overlay's upper layer", strings.TrimSpace(string(out)))
		}
	}
	if msg == "" {
		return img
	}
	if os.Getenv("REQUIRE_IMAGE") == "1" {
		t.Fatal(msg + " (REQUIRE_IMAGE=1)")
	}
	t.Skip(msg)
	return ""
}

// workerUID is the image's user (inference/Dockerfile).
const workerUID = 1000

// TestRealWorkerImage is TestRealWorker with the worker run from the image
// RunPod pulls, not from the venv: each worker is a container of the image
// built from inference/Dockerfile, run by buildah as the image's user on
// the host's network. Every tiny model goes ready and answers /runsync,
// the worker writes nowhere but its cache and temporary directories, and it
// finds its cache with and without a volume at /runpod-volume, RunPod's
// cached models included.
func TestRealWorkerImage(t *testing.T) {
	_, tiny := inferenceEnv(t)
	image := inferenceImage(t)
	if testing.Short() {
		t.Skip("end-to-end")
	}
	// What the first run's workers cached, laid out as RunPod's cached
	// models are, for the second run.
	runpodCache := t.TempDir()

	t.Run("container disk", func(t *testing.T) {
		runTinyModels(t, map[string]string{"VISGATE_INFERENCE_IMAGE": image, "VISGATE_TINY_MODELS": tiny},
			func(t *testing.T, r tinyRun) {
				upper := containerChanges(t, r.endpointID)
				written := writtenBy(t, upper, workerUID)
				checkOnlyCacheAndTemp(t, written)
				t.Logf("%s: the worker wrote %d files in its container, e.g. %v", r.model, len(written), written[:min(3, len(written))])
				hub := filepath.Join(upper, "home/worker/.cache/huggingface/hub")
				repo := "models--" + strings.ReplaceAll(r.model, "/", "--")
				if !slices.ContainsFunc(written, func(p string) bool { return strings.HasPrefix(p, "home/worker/.cache/huggingface/hub/"+repo+"/") }) {
					t.Errorf("%s: the worker cached nothing under ~/.cache/huggingface/hub/%s; it wrote %v", r.model, repo, written)
				}
				if r.model == hubsim.TinySentenceEmbeddings {
					copyRunPodCache(t, filepath.Join(hub, repo), filepath.Join(runpodCache, repo))
				}
			})
	})

	t.Run("runpod volume", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(runpodCache, "models--"+strings.ReplaceAll(hubsim.TinySentenceEmbeddings, "/", "--"))); err != nil {
			t.Fatalf("the first run left no cache to serve as RunPod's cached models: %v", err)
		}
		vol := t.TempDir()
		// RunPod's cached models: read-only for the worker.
		if err := os.MkdirAll(filepath.Join(vol, "huggingface-cache"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(runpodCache, filepath.Join(vol, "huggingface-cache", "hub")); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(vol, 0o777); err != nil { // a network volume the worker can write
			t.Fatal(err)
		}
		logs := runTinyModels(t, map[string]string{"VISGATE_INFERENCE_IMAGE": image, "VISGATE_TINY_MODELS": tiny, "VISGATE_RUNPOD_VOLUME": vol},
			func(t *testing.T, r tinyRun) {
				upper := containerChanges(t, r.endpointID)
				written := writtenBy(t, upper, workerUID)
				checkOnlyCacheAndTemp(t, written)
				for _, p := range written {
					if strings.Contains(p, "/huggingface/hub/") {
						t.Errorf("%s: with a volume mounted, the worker cached %s on the container disk", r.model, p)
					}
				}
			})
		// The text-to-image model was downloaded to the volume's Hub cache;
		// the embeddings model came from RunPod's cached models, untouched.
		t2i := filepath.Join(vol, "huggingface", "hub", "models--"+strings.ReplaceAll(hubsim.TinyTextToImage, "/", "--"))
		if fi, err := os.Stat(t2i); err != nil || fi.Sys().(*syscall.Stat_t).Uid != workerUID {
			t.Errorf("the volume's Hub cache holds no text-to-image model written by uid %d: %v", workerUID, err)
		}
		emb := filepath.Join(vol, "huggingface", "hub", "models--"+strings.ReplaceAll(hubsim.TinySentenceEmbeddings, "/", "--"))
		if _, err := os.Stat(emb); err == nil {
			t.Errorf("the embeddings model was downloaded to %s although RunPod's cached models hold it", emb)
		}
		if !strings.Contains(logs, "using RunPod's cached model at /runpod-volume/huggingface-cache/hub/models--visgate-tiny--sentence-embeddings/snapshots/") {
			t.Error("no worker log line says it used RunPod's cached model")
		}
	})
}

// containerChanges returns the directory that holds what the running
// worker of the endpoint changed in its container (the overlay's upper
// layer), unmounted again when the test ends.
func containerChanges(t *testing.T, endpointID string) string {
	t.Helper()
	out, err := exec.Command("buildah", "containers", "--noheading", "--format", "{{.ContainerName}}").Output()
	if err != nil {
		t.Fatalf("buildah containers: %v", err)
	}
	// runpodsim-<simulator's pid>-<endpoint>-<worker>
	part := "-" + strings.ToLower(endpointID) + "-"
	var name string
	for _, n := range strings.Fields(string(out)) {
		if strings.HasPrefix(n, fmt.Sprintf("runpodsim-%d-", os.Getpid())) && strings.Contains(n, part) {
			name = n
		}
	}
	if name == "" {
		t.Fatalf("no container runpodsim-%d-*%s* among %q", os.Getpid(), part, out)
	}
	mnt, err := exec.Command("buildah", "mount", name).Output()
	if err != nil {
		t.Fatalf("buildah mount %s: %v", name, err)
	}
	t.Cleanup(func() { _ = exec.Command("buildah", "umount", name).Run() })
	merged := strings.TrimSpace(string(mnt))
	upper := filepath.Join(filepath.Dir(merged), "diff")
	if _, err := os.Stat(upper); err != nil {
		t.Fatalf("container %s: no overlay upper layer beside %s: %v", name, merged, err)
	}
	return upper
}

// writtenBy lists what uid made in the layer (paths relative to its root),
// and fails the test if the worker's uid owns a file it did not create
// there: the worker must not run as root.
func writtenBy(t *testing.T, layer string, uid uint32) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(layer, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == layer {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(layer, path)
		if st.Uid == uid && !d.IsDir() {
			out = append(out, rel)
		}
		if st.Uid == 0 && !d.IsDir() && strings.HasPrefix(rel, "home/worker/.cache") {
			t.Errorf("%s is root's: the worker ran as root", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", layer, err)
	}
	return out
}

// checkOnlyCacheAndTemp fails for any file outside the worker's caches and
// temporary directories.
func checkOnlyCacheAndTemp(t *testing.T, written []string) {
	t.Helper()
	for _, p := range written {
		if !strings.HasPrefix(p, "home/worker/.cache/") && !strings.HasPrefix(p, "tmp/") && !strings.HasPrefix(p, "var/tmp/") {
			t.Errorf("the worker wrote %s, outside its cache and temporary directories", p)
		}
	}
}

// copyRunPodCache copies a repository's Hub cache (blobs, snapshots of
// symlinks, refs) to dst, as RunPod's cached models hold it, with the
// default branch's ref pointing at its one snapshot.
func copyRunPodCache(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	snaps, err := os.ReadDir(filepath.Join(dst, "snapshots"))
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots of %s: %v, %v", dst, snaps, err)
	}
	if err := os.MkdirAll(filepath.Join(dst, "refs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "refs", "main"), []byte(snaps[0].Name()), 0o644); err != nil {
		t.Fatal(err)
	}
}
