package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/visgate/deployment-orchestrator/shared/syncbuf"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// visgateBinary builds the command once per test run.
func visgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "visgate-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "visgate")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return binPath
}

// onTerminal runs the built visgate on a pseudo-terminal of its own (its
// controlling terminal, so ^C there is a real SIGINT) and returns what the
// terminal showed as it goes.
type terminalRun struct {
	cmd    *exec.Cmd
	ptmx   *os.File
	screen *syncbuf.Buffer
	read   chan struct{}
}

func onTerminal(t *testing.T, env []string, args ...string) *terminalRun {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 140}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(visgateBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TERM=xterm-256color"}, env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds it
	r := &terminalRun{cmd: cmd, ptmx: ptmx, screen: &syncbuf.Buffer{}, read: make(chan struct{})}
	go func() {
		defer close(r.read)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			_, _ = r.screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = ptmx.Close()
	})
	return r
}

// wait returns the exit code and everything the terminal showed.
func (r *terminalRun) wait(t *testing.T) (int, string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		<-r.read
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), r.screen.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, r.screen.String()
	case <-time.After(30 * time.Second):
		t.Fatalf("visgate did not exit; the terminal shows:\n%s", r.screen.String())
	}
	return 0, ""
}

func (r *terminalRun) waitFor(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	wait.Until(t, 20*time.Second, fmt.Sprintf("the terminal to show %v", re),
		func() bool { return re.MatchString(r.screen.String()) },
		func() string { return fmt.Sprintf("the terminal shows:\n%q", r.screen.String()) })
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// The progress bar: percentage, bytes done of total, rate, then elapsed
// and time left.
var barRe = regexp.MustCompile(`downloading\s+\d+% \|[^|]*\| \(\d+(\.\d+)?/\d+(\.\d+)? [kMG]?B, \d+(\.\d+)? [kMG]?B/s\) \[\d+(\.\d+)?[mnuµ]?s:\d+(\.\d+)?[mnuµ]?s\]`)

// TestProgressOnTerminal: on a terminal, deploy --wait draws its phases,
// a progress bar with bytes, rate and time left that redraws in place,
// and colour; then the endpoint and calls to paste.
func TestProgressOnTerminal(t *testing.T) {
	api := newFakeAPI(t)
	api.set(download(), nil)
	r := onTerminal(t, []string{"VISGATE_URL=" + api.URL, "VISGATE_API_KEY=" + testAPIKey, "RUNPOD_API_KEY=" + testRunPodKey},
		"deploy", "visgate-tiny/text-to-image", "--wait", "--poll-interval", "150ms")
	code, screen := r.wait(t)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, screen)
	}
	t.Logf("the terminal showed:\n%s", screen)
	for _, colour := range []string{"\x1b[32m", "\x1b[36m"} { // colour on a terminal
		if !strings.Contains(screen, colour) {
			t.Errorf("no colour %q on the terminal", colour)
		}
	}
	screen = ansi.ReplaceAllString(screen, "")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`› .*validating`),
		regexp.MustCompile(`› .*downloading_model`),
		barRe,
		regexp.MustCompile(`downloading\s+25% `),
		regexp.MustCompile(`downloading\s+50% `),
		regexp.MustCompile(`downloading\s+100% `),
		regexp.MustCompile(`\(3\.1/3\.1 MB,`),
		regexp.MustCompile(`› .*loading_model`),
		regexp.MustCompile(`✓ .*ready`),
		regexp.MustCompile(`endpoint: https://api\.runpod\.ai/v2/ep123`),
		regexp.MustCompile(`visgate run dep_2026_0a1b2c3d --prompt`),
		regexp.MustCompile("\r"), // the bar redraws its line
	} {
		if !want.MatchString(screen) {
			t.Errorf("the terminal lacks %q", want)
		}
	}
	if strings.Contains(screen, "status validating") {
		t.Errorf("a terminal got the line mode's output")
	}
}

// TestCtrlCOnTerminal: ^C typed on the terminal while waiting stops the
// wait with exit 130, says the deployment goes on, and deletes nothing.
func TestCtrlCOnTerminal(t *testing.T) {
	api := newFakeAPI(t)
	api.set(download()[:4], nil) // stays downloading
	r := onTerminal(t, []string{"VISGATE_URL=" + api.URL, "VISGATE_API_KEY=" + testAPIKey, "RUNPOD_API_KEY=" + testRunPodKey},
		"deploy", "org/model", "--wait", "--poll-interval", "50ms")
	r.waitFor(t, regexp.MustCompile(`downloading\s+25% `))
	if _, err := r.ptmx.Write([]byte{3}); err != nil { // ^C
		t.Fatal(err)
	}
	code, screen := r.wait(t)
	if code != exitInterrupted {
		t.Errorf("exit %d, want %d:\n%s", code, exitInterrupted, screen)
	}
	if !strings.Contains(screen, "dep_2026_0a1b2c3d goes on, nothing was deleted") {
		t.Errorf("the terminal shows:\n%s", screen)
	}
	for _, m := range api.methods() {
		if strings.HasPrefix(m, "DELETE") {
			t.Errorf("Ctrl-C sent %s", m)
		}
	}
}
