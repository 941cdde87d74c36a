package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
)

// smallDisk mounts a file system of size bytes (tmpfs) in a temporary
// directory, unmounted with the test, or skips the test where mounting is
// not allowed (it needs root).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("a full disk needs a small file system of its own: mounting a tmpfs needs root (%v)", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// ballast fills the file system of dir, leaving nothing free, and returns
// a function that frees the space again.
func ballast(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	_ = f.Close()
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFullDiskRefusesWritesAndKeepsTheData (issue 23, item 5): on a full
// disk a write fails with store.ErrFull, changes nothing, and once space
// returns the store writes again with every record it held intact, also
// after a reopen.
func TestFullDiskRefusesWritesAndKeepsTheData(t *testing.T) {
	dir := smallDisk(t, 4<<20)
	path := filepath.Join(dir, "orchestrator.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 5 {
		if err := s.Create(t.Context(), storetest.Filled(t, fmt.Sprintf("dep_2026_%08x", i+1), "owner", now)); err != nil {
			t.Fatal(err)
		}
	}
	free := ballast(t, dir)
	refused := 0
	for i := range 200 {
		err := s.Create(t.Context(), storetest.Filled(t, fmt.Sprintf("dep_2026_%08x", 100+i), "owner", now))
		if err == nil {
			continue // bbolt had room left in its pages
		}
		if !errors.Is(err, store.ErrFull) {
			t.Fatalf("write on a full disk: %v, want store.ErrFull", err)
		}
		refused++
	}
	if refused == 0 {
		t.Fatal("no write was refused on a full disk")
	}
	if _, err := s.Update(t.Context(), "dep_2026_00000001", func(d *deployment.Deployment) error { d.Error = "x"; return nil }); err != nil && !errors.Is(err, store.ErrFull) {
		t.Fatalf("update on a full disk: %v", err)
	}
	free()
	if err := s.Create(t.Context(), storetest.Filled(t, "dep_2026_0000ffff", "owner", now)); err != nil {
		t.Fatalf("write once space returned: %v", err)
	}
	// What this process reads (its cache) is what the file holds: a write
	// refused for want of space is not kept.
	before, err := s.Get(t.Context(), "dep_2026_00000001")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatalf("reopen after the disk was full: %v", err)
	}
	defer s.Close()
	after, err := s.Get(t.Context(), "dep_2026_00000001")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(after, before); diff != "" {
		t.Errorf("the record read before the restart differs from the file's (-file +read):\n%s", diff)
	}
	for i := range 5 {
		if _, err := s.Get(t.Context(), fmt.Sprintf("dep_2026_%08x", i+1)); err != nil {
			t.Errorf("record %d after the disk was full: %v", i+1, err)
		}
	}
	if len(s.Unreadable()) != 0 {
		t.Errorf("unreadable records: %v", s.Unreadable())
	}
}
