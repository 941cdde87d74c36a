package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// DefaultURL is the API of `make run`.
const DefaultURL = "http://127.0.0.1:8080"

// fileConfig is the optional config file.
type fileConfig struct {
	URL          string `json:"url"`
	APIKey       string `json:"api_key"`
	RunPodAPIKey string `json:"runpod_api_key"`
}

// app is what every command shares: the settings, once resolved, and the
// output streams.
type app struct {
	getenv       func(string) string
	out, errOut  io.Writer
	tty          bool // stdout is a terminal: bars and colour
	color        bool
	output       string // "text" or "json"
	url          string
	apiKey       string
	runpodKey    string
	configPath   string
	pollInterval time.Duration
	api          *client
}

func newRootCmd(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	a := &app{getenv: getenv, out: stdout, errOut: stderr}
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		a.tty = true
		a.color = getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
	}
	root := &cobra.Command{
		Use:   "visgate",
		Short: "Deploy Hugging Face models as serverless endpoints on your RunPod account",
		Long: `visgate drives the Deployment Orchestrator's API: deploy a model and wait for it
with live progress, call the deployed endpoint, list, change and delete deployments.

Settings come from flags, then the environment (VISGATE_URL, VISGATE_API_KEY,
RUNPOD_API_KEY), then the config file (VISGATE_CONFIG, by default
` + "`<user config dir>/visgate/config.json`" + `: {"url", "api_key", "runpod_api_key"}).

Exit codes: 0 success; 1 other error (network, the service's 5xx); 2 usage
error or missing setting; 3 the API refused the request (4xx); 4 the
deployment or the job failed; 5 --timeout passed; 130 interrupted (Ctrl-C).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.resolve(cmd)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetContext(ctx)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", "", "API base URL (env VISGATE_URL; default "+DefaultURL+")")
	pf.StringVar(&a.apiKey, "api-key", "", "API key of the orchestrator (env VISGATE_API_KEY)")
	pf.StringVar(&a.runpodKey, "runpod-key", "", "your RunPod API key, for deploy and run (env RUNPOD_API_KEY)")
	pf.StringVar(&a.configPath, "config", "", "config file (env VISGATE_CONFIG)")
	pf.StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	pf.DurationVar(&a.pollInterval, "poll-interval", time.Second, "how often waiting commands ask the API")
	_ = pf.MarkHidden("poll-interval")
	root.AddCommand(a.deployCmd(), a.runCmd(), a.lsCmd(), a.getCmd(), a.logsCmd(), a.patchCmd(), a.rmCmd(),
		a.gpusCmd(), a.modelsCmd())
	return root
}

// resolve applies flags, then the environment, then the config file.
func (a *app) resolve(cmd *cobra.Command) error {
	if a.output != "text" && a.output != "json" {
		return usagef("--output must be text or json, not %q", a.output)
	}
	if a.pollInterval <= 0 {
		return usagef("--poll-interval must be positive")
	}
	fc, err := a.readConfig()
	if err != nil {
		return err
	}
	pick := func(flagVal, env, file string) string {
		for _, v := range []string{flagVal, a.getenv(env), file} {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
		return ""
	}
	a.url = pick(a.url, "VISGATE_URL", fc.URL)
	if a.url == "" {
		a.url = DefaultURL
	}
	a.apiKey = pick(a.apiKey, "VISGATE_API_KEY", fc.APIKey)
	a.runpodKey = pick(a.runpodKey, "RUNPOD_API_KEY", fc.RunPodAPIKey)
	a.api = newClient(a.url, a.apiKey)
	return nil
}

func (a *app) readConfig() (fileConfig, error) {
	var fc fileConfig
	path := a.configPath
	explicit := path != ""
	if !explicit {
		path = a.getenv("VISGATE_CONFIG")
		explicit = path != ""
	}
	if !explicit {
		dir := a.getenv("XDG_CONFIG_HOME")
		if dir == "" {
			d, err := os.UserConfigDir()
			if err != nil {
				return fc, nil // no config directory: no config file
			}
			dir = d
		}
		path = filepath.Join(dir, "visgate", "config.json")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return fc, nil
	}
	if err != nil {
		return fc, usagef("config file: %w", err)
	}
	if err := json.Unmarshal(b, &fc); err != nil {
		return fc, usagef("config file %s: %w", path, err)
	}
	return fc, nil
}

// needAPIKey is the check of the commands that use the API key.
func (a *app) needAPIKey() error {
	if a.apiKey == "" {
		return usagef("no API key: give --api-key, set VISGATE_API_KEY, or put api_key in the config file")
	}
	return nil
}

func (a *app) needRunPodKey() error {
	if a.runpodKey == "" {
		return usagef("no RunPod API key: give --runpod-key, set RUNPOD_API_KEY, or put runpod_api_key in the config file")
	}
	return nil
}

// args checks the number of positional arguments as a usage error.
func args(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		switch {
		case len(a) < lo:
			return usagef("%s: missing argument (usage: %s)", cmd.Name(), cmd.UseLine())
		case hi >= 0 && len(a) > hi:
			return usagef("%s: too many arguments (usage: %s)", cmd.Name(), cmd.UseLine())
		}
		return nil
	}
}

// isFlagError recognises cobra's own usage errors (unknown command).
func isFlagError(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag")
}

// paint wraps s in an ANSI colour when colour is on.
func (a *app) paint(code, s string) string {
	if !a.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// printJSON writes raw JSON (an API answer) indented, or v encoded.
func (a *app) printJSON(v any) error {
	var b []byte
	var err error
	if raw, ok := v.(json.RawMessage); ok {
		var x any
		if err = json.Unmarshal(raw, &x); err == nil {
			b, err = json.MarshalIndent(x, "", "  ")
		}
	} else {
		b, err = json.MarshalIndent(v, "", "  ")
	}
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err = fmt.Fprintln(a.out, string(b))
	return err
}

// printJSONLine writes v as one line of JSON (a stream of events).
func (a *app) printJSONLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err = fmt.Fprintln(a.out, string(b))
	return err
}
