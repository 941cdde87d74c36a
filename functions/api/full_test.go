package api

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/store/bolt"
)

// TestFullDiskAnswers503 (issue 23, item 5): with the embedded store's disk
// full (a small tmpfs, filled), POST answers 503 StorageFullError with
// Retry-After and a sentence naming the cause, never a generic 500, and
// works again once space returns.
func TestFullDiskAnswers503(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4194304"); err != nil {
		t.Skipf("a full disk needs a small file system of its own: mounting a tmpfs needs root (%v)", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	st, err := bolt.Open(filepath.Join(dir, "orchestrator.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.srv.Store = st
	f.h = f.srv.Handler()

	ballast := filepath.Join(dir, "ballast")
	b, err := os.Create(ballast)
	if err != nil {
		t.Fatal(err)
	}
	for chunk := make([]byte, 4096); ; {
		if _, err := b.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	_ = b.Close()

	codes := map[int]int{}
	var full *http.Response
	for range 20 {
		rec := f.do(t, "POST", "/v1/deployments", keyA, validCreate)
		codes[rec.Code]++
		if rec.Code == http.StatusServiceUnavailable && full == nil {
			full = rec.Result()
			got := body(t, rec)
			if got["error"] != "StorageFullError" || !strings.Contains(fmt.Sprint(got["message"]), "disk") {
				t.Errorf("503 body %v: want StorageFullError naming the full disk", got)
			}
		}
	}
	if codes[http.StatusInternalServerError] > 0 || full == nil {
		t.Fatalf("POSTs on a full disk answered %v: want 503 (202 while bbolt's pages had room)", codes)
	}
	if ra := full.Header.Get("Retry-After"); ra == "" {
		t.Error("the 503 has no Retry-After")
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if rec := f.do(t, "POST", "/v1/deployments", keyA, validCreate); rec.Code != http.StatusAccepted {
		t.Errorf("POST once space returned = %d %s", rec.Code, rec.Body)
	}
}
