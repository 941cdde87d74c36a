package runpodsim

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// containerEnvPath is where a container worker's env file is mounted.
const containerEnvPath = "/run/visgate-worker.env"

// containerPrefix starts the name of every container a simulator makes;
// the name goes on with the simulator's process id, so a later simulator
// can tell the containers of a process that died (sweepStale).
const containerPrefix = "runpodsim-"

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// containerCommand makes the worker's container and the command that runs
// the image's Python in it; done removes the container once the worker
// has stopped. The env goes in through a file in the worker's own
// directory (0700, root's), mounted read-only and sourced by the image's
// /bin/sh, so that no value (the callback secret, an HF token) is on a
// command line that any user of the machine can read.
func (s *Server) containerCommand(e *endpoint, w *worker, env []string, dir string) (*exec.Cmd, func(), error) {
	c := s.cfg.proc.Container
	s.sweep.Do(func() { s.sweepStale(c) })
	name := strings.ToLower(fmt.Sprintf("%s%d-%s-%s", containerPrefix, os.Getpid(), e.id, w.id))
	file := filepath.Join(dir, "container.env")
	var b strings.Builder
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if !envName.MatchString(k) {
			s.logf(e.id, w.id, "env %q is not a shell variable name: not passed to the container", k)
			continue
		}
		b.WriteString(k + "='" + strings.ReplaceAll(v, "'", `'\''`) + "'\n")
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return nil, nil, fmt.Errorf("the container's env file: %w", err)
	}
	if out, err := exec.Command(c.buildah(), "from", "--pull=never", "--quiet", "--name", name, c.Image).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("buildah from %s: %s: %w", c.Image, bytes.TrimSpace(out), err)
	}
	s.mu.Lock()
	w.container = name
	s.mu.Unlock()
	args := []string{"run", "--isolation", "chroot", "--terminal=false", "--volume", file + ":" + containerEnvPath + ":ro"}
	if c.Volume != "" {
		args = append(args, "--volume", c.Volume+":/runpod-volume")
	}
	args = append(args, name, "--", "/bin/sh", "-c",
		"set -a; . "+containerEnvPath+"; set +a; exec python -m "+s.cfg.proc.Module)
	cmd := exec.Command(c.buildah(), args...)
	cmd.Dir = dir
	cmd.Env = buildahEnv(dir)
	done := func() {
		if c.Keep {
			return
		}
		if out, err := exec.Command(c.buildah(), "rm", name).CombinedOutput(); err != nil {
			s.logf(e.id, w.id, "could not remove container %s: %v: %s", name, err, bytes.TrimSpace(out))
		}
	}
	return cmd, done, nil
}

// buildahEnv is the env buildah itself runs with: its own settings and the
// storage's, as the build had them, and nothing of the worker's.
func buildahEnv(home string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "BUILDAH_ISOLATION=chroot"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "TMPDIR" || k == "XDG_RUNTIME_DIR" || strings.HasPrefix(k, "CONTAINERS_") || strings.HasPrefix(k, "STORAGE_") ||
			(strings.HasPrefix(k, "BUILDAH_") && k != "BUILDAH_ISOLATION") {
			env = append(env, kv)
		}
	}
	return env
}

// sweepStale removes the containers that simulators of processes no longer
// alive left behind (killed before their clean-up ran: Ctrl-C, a test's
// time-out), stopping any worker still running in one first.
func (s *Server) sweepStale(c *Container) {
	out, err := exec.Command(c.buildah(), "containers", "--noheading", "--format", "{{.ContainerName}}").Output()
	if err != nil {
		return
	}
	for _, name := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(name, containerPrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // not ours, or its simulator still runs
		}
		if mnt, err := exec.Command(c.buildah(), "mount", name).Output(); err == nil {
			killChrootedIn(strings.TrimSpace(string(mnt)))
			_ = exec.Command(c.buildah(), "umount", name).Run()
		}
		if err := exec.Command(c.buildah(), "rm", name).Run(); err == nil {
			s.logf("-", "-", "removed container %s, left by a simulator that is gone", name)
		}
	}
}

// killChrootedIn kills every process whose root directory is root (a
// worker that outlived its buildah run).
func killChrootedIn(root string) {
	if root == "" || root == "/" {
		return
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if r, err := os.Readlink(filepath.Join(p, "root")); err == nil && r == root {
			if pid, err := strconv.Atoi(filepath.Base(p)); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}
