// Command dev runs the Google Cloud shape of the orchestrator on this
// machine (`make dev`): every function in its own functions-framework
// process (FUNCTION_TARGET set, as Cloud Run serves it), against the
// Firestore and Cloud Tasks emulators; a front door that routes the SPEC
// paths of one base URL to the functions, as a load balancer would; and a
// bridge that turns Firestore emulator writes into the protobuf CloudEvents
// Eventarc sends to DeploymentChanged.
//
//	dev               supervise: start every piece, stop them all on SIGINT/SIGTERM
//	dev -serve        one function (FUNCTION_TARGET, PORT), via functions-framework
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	orchestrator "github.com/visgate/deployment-orchestrator"
	"github.com/visgate/deployment-orchestrator/functions/api"
	"github.com/visgate/deployment-orchestrator/functions/app"
	"github.com/visgate/deployment-orchestrator/functions/dev/bridge"
	"github.com/visgate/deployment-orchestrator/functions/localsim"
	"github.com/visgate/deployment-orchestrator/shared/config"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/logging"
)

func main() {
	serve := flag.Bool("serve", false, "serve FUNCTION_TARGET on PORT with functions-framework")
	flag.Parse()
	var err error
	if *serve {
		// The supervisor said what the configuration means, once for all.
		orchestrator.AnnounceStartup = false
		// Default signal handling: SIGTERM ends the function process.
		err = funcframework.StartHostPort("127.0.0.1", os.Getenv("PORT"))
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = supervise(ctx, os.Getenv, os.Stdout)
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

// BasePort is the first port of the functions (PORT+1...).
func ports(base int) map[string]int {
	out := map[string]int{}
	for i, name := range orchestrator.EntryPoints() {
		out[name] = base + 1 + i
	}
	return out
}

func supervise(ctx context.Context, getenv func(string) string, logOut io.Writer) error {
	log := logging.New(logOut, "info", "").With("function", "dev")
	for _, v := range []string{"FIRESTORE_EMULATOR_HOST", "CLOUD_TASKS_EMULATOR_HOST"} {
		if getenv(v) == "" {
			return fmt.Errorf("%s is not set: start the emulators first (scripts/dev.sh does)", v)
		}
	}
	port := 8080
	if p := getenv("PORT"); p != "" {
		var err error
		if port, err = strconv.Atoi(p); err != nil {
			return fmt.Errorf("PORT=%q: %w", p, err)
		}
	}
	project := getenv("GCP_PROJECT_ID")
	if project == "" {
		project = "demo-visgate"
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fnPorts := ports(port)
	addr := func(name string) string { return fmt.Sprintf("127.0.0.1:%d", fnPorts[name]) }
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := append(os.Environ(),
		"BACKEND=gcp",
		"GCP_PROJECT_ID="+project,
		"PROVISION_TASK_URL=http://"+addr(orchestrator.FnProvisionTask)+"/",
		"PUBLIC_BASE_URL="+base,
	)
	// The configuration as given (SIMULATE included), for the start-up log.
	cfg, err := config.Load(lookup(env))
	if err != nil {
		return err
	}
	if cfg.Simulate {
		// One pair of simulators, here, for every function process: the
		// functions themselves are built as deployed, without them, and
		// refuse SIMULATE; they reach the simulators at their URLs.
		sims := localsim.Start(log, cfg)
		defer sims.Close()
		sims.Apply(cfg)
		env = withoutVar(env, "SIMULATE")
		for k, v := range localsim.Env(cfg) {
			env = append(withoutVar(env, k), k+"="+v)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(fnPorts)+2)
	var cmds []*exec.Cmd
	var exited []chan struct{} // closed when the process's (only) Wait returns
	for _, name := range orchestrator.EntryPoints() {
		cmd := exec.CommandContext(ctx, self, "-serve")
		cmd.Env = append(env, "FUNCTION_TARGET="+name, "PORT="+strconv.Itoa(fnPorts[name]))
		cmd.Stdout, cmd.Stderr = logOut, os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 5 * time.Second
		// The function processes die with the supervisor, however it ends.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		cmds = append(cmds, cmd)
		done := make(chan struct{})
		exited = append(exited, done)
		go func() {
			err := cmd.Wait()
			close(done)
			errc <- fmt.Errorf("%s exited: %w", name, err)
		}()
	}
	for _, name := range orchestrator.EntryPoints() {
		if err := waitListening(ctx, addr(name), 60*time.Second); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	// The bridge listens before the front door opens: a deployment
	// created earlier would be in the bridge's first snapshot, which it
	// takes for the state before it started, and its first step would
	// wait for a reconcile.
	client, err := firestore.NewClient(ctx, project)
	if err != nil {
		return fmt.Errorf("firestore: %w", err)
	}
	defer client.Close()
	listening := make(chan struct{})
	br := &bridge.Bridge{Client: client, ProjectID: project, Collection: "deployments",
		Target: "http://" + addr(orchestrator.FnDeploymentChanged) + "/", HTTP: &http.Client{Timeout: 30 * time.Second}, Log: log,
		Listening: func() { close(listening) }}
	go func() { errc <- br.Run(ctx) }()
	var srv *http.Server
	select {
	case <-listening:
		fd, ferr := FrontDoor(func(fn string) string { return "http://" + addr(fn) })
		if ferr != nil {
			err = ferr
			break
		}
		srv = &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: fd, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- srv.ListenAndServe() }()
		log.Info("dev stack up", "base_url", base, "functions", fnPorts)
		app.LogStartup(ctx, log, cfg)
		select {
		case <-ctx.Done():
		case err = <-errc:
		}
	case <-ctx.Done():
	case err = <-errc:
	}
	if err != nil {
		log.Error("a piece stopped; stopping the rest", "error", err.Error())
	}
	cancel()
	shut, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	if srv != nil {
		_ = srv.Shutdown(shut)
	}
	for _, c := range cmds {
		if c.Process != nil {
			if err := c.Process.Signal(syscall.SIGTERM); err != nil {
				log.Warn("signal function process", "pid", c.Process.Pid, "error", err.Error())
			}
		}
	}
	for _, done := range exited {
		<-done // Wait once per process: a second Wait would block for ever
	}
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), context.Canceled) {
		return nil
	}
	return err
}

// withoutVar drops name from a KEY=VALUE environment.
func withoutVar(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// lookup reads a variable from env (KEY=VALUE lines; the last one wins).
func lookup(env []string) func(string) string {
	return func(key string) string {
		v := ""
		for _, kv := range env {
			if k, val, ok := strings.Cut(kv, "="); ok && k == key {
				v = val
			}
		}
		return v
	}
}

func waitListening(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not listening on %s after %s", addr, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FrontDoor routes each SPEC path and method to the function that serves
// it (api.Routes), keeping the path, as one public base URL does.
func FrontDoor(url func(fn string) string) (http.Handler, error) {
	mux := http.NewServeMux()
	proxies := map[string]*httputil.ReverseProxy{}
	byPattern := map[string]map[string]string{} // pattern → method → function
	var order []string
	for _, r := range api.Routes() {
		if _, ok := proxies[r.Function]; !ok {
			u, err := parse(url(r.Function))
			if err != nil {
				return nil, err
			}
			proxies[r.Function] = httputil.NewSingleHostReverseProxy(u)
		}
		if byPattern[r.Pattern] == nil {
			byPattern[r.Pattern] = map[string]string{}
			order = append(order, r.Pattern)
		}
		for _, m := range r.Methods {
			byPattern[r.Pattern][m] = r.Function
		}
	}
	for _, p := range order {
		methods := byPattern[p]
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			m := r.Method
			if m == http.MethodHead {
				m = http.MethodGet
			}
			fn, ok := methods[m]
			if !ok {
				var allowed []string
				for k := range methods {
					allowed = append(allowed, k)
				}
				httpx.WriteError(w, httpx.MethodNotAllowed(allowed...))
				return
			}
			proxies[fn].ServeHTTP(w, r)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, httpx.RouteNotFound(r.URL.Path))
	})
	return mux, nil
}

func parse(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, errors.Join(fmt.Errorf("bad function URL %q", raw), err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}
