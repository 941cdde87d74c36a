package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
)

// createModel creates n deployments of model with extra fields (a JSON
// fragment starting with a comma, or "").
func (w *world) createModel(n int, model, extra string) ([]string, error) {
	var ids []string
	for range n {
		code, m := w.call("POST", "/v1/deployments", fmt.Sprintf(
			`{"hf_model_id":%q,"user_runpod_key":%q,"user_webhook_url":%q%s}`, model, runpodKey, w.hook.URL+"/hook", extra))
		if code != http.StatusAccepted {
			return nil, fmt.Errorf("POST = %d %v", code, m)
		}
		ids = append(ids, m["deployment_id"].(string))
	}
	return ids, nil
}

// Issue 23, item 1: n deployments on our worker; the server is killed -9
// two seconds before the workers report ready and stays down 25 s.
func issue23Ready(bin string, n int) error {
	const interval = 2 * time.Second // the container's reports: downloading, loading, ready
	w, err := newWorld(bin, runpodsim.WithBootDelay(3*interval), runpodsim.WithCallbackInterval(interval),
		runpodsim.WithRequestURLBase(""))
	if err != nil {
		return err
	}
	defer w.close()
	w.env = append(w.env, "READY_DEADLINE=2m")
	if err := w.start(); err != nil {
		return err
	}
	ids, err := w.createModel(n, "stabilityai/sdxl-turbo", "")
	if err != nil {
		return err
	}
	// Kill once every worker reported loading_model: ready comes 2 s later.
	loading := func() int {
		seen := map[string]bool{}
		for _, c := range w.rp.Callbacks() {
			if c.Status == "loading_model" && c.HTTPStatus == http.StatusOK {
				seen[c.DeploymentID] = true
			}
		}
		return len(seen)
	}
	for deadline := time.Now().Add(60 * time.Second); loading() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d workers reported loading_model", loading(), n)
		}
	}
	w.kill(syscall.SIGKILL)
	time.Sleep(25 * time.Second)
	restart := time.Now()
	if err := w.start(); err != nil {
		return err
	}
	final := func(m map[string]any) bool { s := status(m); return s == "ready" || s == "failed" }
	w.waitAll(ids, 3*time.Minute, final)
	ready, failed, gone := 0, 0, 0
	for _, id := range ids {
		switch status(w.get(id)) {
		case "ready":
			ready++
		case "failed":
			failed++
			if len(w.endpoints(id)) == 0 {
				gone++
			}
		}
	}
	fmt.Printf("issue 23 item 1 (kill -9 2 s before ready, down 25 s): %d of %d ready, %d failed (%d endpoints deleted), settled %.0f s after the restart\n",
		ready, n, failed, gone, time.Since(restart).Seconds())
	return nil
}

// Issue 23, item 2: per ready deployment, PATCH {1,2}, then 0.3 s later
// {0,3}, with RunPod taking 0.5 s to apply the first.
func issue23Patch(bin string, n int) error {
	w, err := newWorld(bin, runpodsim.WithBootDelay(time.Second), runpodsim.WithCallbackInterval(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer w.close()
	if err := w.start(); err != nil {
		return err
	}
	ids, err := w.create(n)
	if err != nil {
		return err
	}
	if !w.waitAll(ids, 60*time.Second, isReady) {
		return errors.New("the deployments did not become ready")
	}
	time.Sleep(2 * time.Second) // their first scale runs
	for _, id := range ids {
		w.rp.HangNext(runpodsim.OpUpdateEndpoint, 1, 500*time.Millisecond)
		w.call("PATCH", "/v1/deployments/"+id, `{"min_workers":1,"max_workers":2}`)
		time.Sleep(300 * time.Millisecond)
		w.call("PATCH", "/v1/deployments/"+id, `{"min_workers":0,"max_workers":3}`)
		time.Sleep(time.Second)
	}
	time.Sleep(3 * time.Second)
	stale := 0
	for _, id := range ids {
		for _, ep := range w.endpoints(id) {
			if ep.WorkersMin != 0 || ep.WorkersMax != 3 {
				stale++
			}
		}
	}
	fmt.Printf("issue 23 item 2 (PATCH 1..2 then 0..3 0.3 s later, RunPod 0.5 s on the first): %d of %d endpoints left at the older scaling\n", stale, n)
	return nil
}

// Issue 23, item 4: n deployments with max_spend_usd read their spend every
// minute while RunPod's billing API hangs; how long do a new deployment
// and a DELETE take?
func issue23Billing(bin string, n int) error {
	w, err := newWorld(bin, runpodsim.WithBootDelay(time.Second), runpodsim.WithCallbackInterval(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer w.close()
	w.env = append(w.env, "SPEND_REFRESH_INTERVAL=1m")
	if err := w.start(); err != nil {
		return err
	}
	w.rp.HangNext(runpodsim.OpListServerlessBilling, 100000, 10*time.Minute)
	ids, err := w.createModel(n, "openai-community/gpt2", `,"max_spend_usd":50`)
	if err != nil {
		return err
	}
	if !w.waitAll(ids, 3*time.Minute, isReady) {
		return errors.New("the deployments did not become ready")
	}
	time.Sleep(2 * time.Second) // their spend reads hang
	start := time.Now()
	fresh, err := w.create(1)
	if err != nil {
		return err
	}
	w.waitAll(fresh, 5*time.Minute, isReady)
	toReady := time.Since(start)
	start = time.Now()
	w.call("DELETE", "/v1/deployments/"+ids[0], "")
	for deadline := time.Now().Add(5 * time.Minute); len(w.endpoints(ids[0])) > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	toDelete := time.Since(start)
	null, estimate := 0, 0
	for _, id := range ids[1:] {
		sp, _ := w.get(id)["spend"].(map[string]any)
		switch {
		case sp == nil:
			null++
		case sp["source"] == "estimate":
			estimate++
		}
	}
	fmt.Printf("issue 23 item 4 (%d deployments reading spend, billing API hanging): new deployment ready in %.1f s, DELETE took its endpoint down in %.1f s; item 6: spend null on %d of %d, an estimate on %d\n",
		n, toReady.Seconds(), toDelete.Seconds(), null, n-1, estimate)
	return nil
}

// Issue 23, item 5: 120 POSTs while the embedded store's disk is full (a
// 16 MB tmpfs, filled; needs root to mount).
func issue23DiskFull(bin string, n int) error {
	w, err := newWorld(bin, runpodsim.WithBootDelay(time.Second), runpodsim.WithCallbackInterval(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer w.close()
	unmount, err := w.smallDisk()
	if err != nil {
		return err
	}
	defer unmount()
	if err := w.start(); err != nil {
		return err
	}
	ids, err := w.create(n)
	if err != nil {
		return err
	}
	w.waitAll(ids, 60*time.Second, isReady)
	ballast, err := w.fillDisk()
	if err != nil {
		return err
	}
	codes := map[int]int{}
	retryAfter := 0
	for range 120 {
		req, _ := http.NewRequest("POST", w.base()+"/v1/deployments", strings.NewReader(fmt.Sprintf(
			`{"hf_model_id":"openai-community/gpt2","user_runpod_key":%q,"user_webhook_url":%q}`, runpodKey, w.hook.URL+"/hook")))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := apiClient.Do(req)
		if err != nil {
			codes[0]++
			continue
		}
		codes[resp.StatusCode]++
		if resp.Header.Get("Retry-After") != "" {
			retryAfter++
		}
		resp.Body.Close()
	}
	if err := os.Remove(ballast); err != nil {
		return err
	}
	after, _ := w.call("POST", "/v1/deployments", fmt.Sprintf(
		`{"hf_model_id":"openai-community/gpt2","user_runpod_key":%q,"user_webhook_url":%q}`, runpodKey, w.hook.URL+"/hook"))
	intact := 0
	for _, id := range ids {
		if status(w.get(id)) == "ready" {
			intact++
		}
	}
	fmt.Printf("issue 23 item 5 (disk full, 120 POSTs): %d answered 500, %d answered 503 (%d with Retry-After), %d 202, %d no answer; after space returned: POST %d, %d of %d earlier deployments intact\n",
		codes[500], codes[503], retryAfter, codes[202], codes[0], after, intact, n)
	return nil
}

// Issue 23, items 3 and 5: deployments in flight when the embedded store's
// disk fills, half of them with max_spend_usd (written by every spend read,
// which hid lost work from the reconciler). The disk stays full for `full`,
// longer than the queue's retry budget (about four minutes), so their tasks
// run out of retries; then space returns. How long does each wait to be
// ready, and is any never resumed?
func issue23Resume(bin string, n int, full time.Duration) error {
	w, err := newWorld(bin, runpodsim.WithBootDelay(20*time.Second), runpodsim.WithCallbackInterval(time.Second))
	if err != nil {
		return err
	}
	defer w.close()
	w.env = append(w.env, "SPEND_REFRESH_INTERVAL=1m")
	unmount, err := w.smallDisk()
	if err != nil {
		return err
	}
	defer unmount()
	if err := w.start(); err != nil {
		return err
	}
	plain, err := w.createModel(n, "openai-community/gpt2", "")
	if err != nil {
		return err
	}
	spend, err := w.createModel(n, "openai-community/gpt2", `,"max_spend_usd":50`)
	if err != nil {
		return err
	}
	all := append(append([]string{}, plain...), spend...)
	// Fill the disk once every endpoint exists: the workers are still booting.
	hasEndpoint := func(m map[string]any) bool { s, _ := m["runpod_endpoint_id"].(string); return s != "" }
	if !w.waitAll(all, 60*time.Second, hasEndpoint) {
		return fmt.Errorf("not every deployment had its endpoint within 60 s")
	}
	ballast, err := w.fillDisk()
	if err != nil {
		return err
	}
	// The store's file still has room for a few writes: POSTs use it up,
	// until five in a row are refused. Those accepted are in flight too.
	var during []string
	for refused, tries := 0, 0; refused < 5 && tries < 300; tries++ {
		code, m := w.call("POST", "/v1/deployments", fmt.Sprintf(
			`{"hf_model_id":"openai-community/gpt2","user_runpod_key":%q,"user_webhook_url":%q}`, runpodKey, w.hook.URL+"/hook"))
		if code == http.StatusAccepted {
			during = append(during, m["deployment_id"].(string))
			refused = 0
		} else {
			refused++
		}
	}
	all = append(all, during...)
	time.Sleep(full) // the outage itself: time is the point
	gaveUp := strings.Count(w.logs.String(), "giving up")
	if err := os.Remove(ballast); err != nil {
		return err
	}
	back := time.Now()
	waited := map[string]time.Duration{}
	for deadline := back.Add(20 * time.Minute); len(waited) < len(all) && time.Now().Before(deadline); time.Sleep(time.Second) {
		for _, id := range all {
			if _, ok := waited[id]; !ok && isReady(w.get(id)) {
				waited[id] = time.Since(back)
			}
		}
	}
	describe := func(ids []string) string {
		ready, slowest := 0, time.Duration(0)
		for _, id := range ids {
			if d, ok := waited[id]; ok {
				ready++
				slowest = max(slowest, d)
			}
		}
		return fmt.Sprintf("%d of %d ready, the last %.0f s after space returned", ready, len(ids), slowest.Seconds())
	}
	fmt.Printf("issue 23 items 3 and 5 (disk full %s with %d deployments in flight, %d tasks given up): without max_spend_usd %s; with max_spend_usd %s; accepted while the disk filled %s (waited at most 20 min)\n",
		full, len(all), gaveUp, describe(plain), describe(spend), describe(during))
	return nil
}

// smallDisk mounts a 16 MiB tmpfs on the server's data directory (root
// only), so that fillDisk can fill it; unmount takes it away.
func (w *world) smallDisk() (unmount func(), err error) {
	if err := syscall.Mount("tmpfs", w.dir, "tmpfs", 0, "size=16777216"); err != nil {
		return nil, fmt.Errorf("a full disk needs a small file system: mounting a tmpfs on %s needs root: %w", w.dir, err)
	}
	return func() { _ = syscall.Unmount(w.dir, syscall.MNT_DETACH) }, nil
}

// fillDisk fills the server's data directory (a small tmpfs) with a
// ballast file, whose path it returns: removing it gives the space back.
func (w *world) fillDisk() (string, error) {
	ballast := filepath.Join(w.dir, "ballast")
	f, err := os.Create(ballast)
	if err != nil {
		return "", err
	}
	for chunk := make([]byte, 64<<10); ; {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	_ = f.Close() // a full disk may refuse what Close flushes: that is the point
	return ballast, nil
}
