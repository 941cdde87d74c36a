package bolt

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
)

// filled writes n deployments to a new store file and closes it.
func filled(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "orchestrator.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range n {
		d := storetest.Filled(t, fmt.Sprintf("dep_2026_%08x", i+1), "owner", now.Add(time.Duration(i)*time.Second))
		if err := s.Create(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// openNoPanic opens path, turning a panic into a test failure.
func openNoPanic(t *testing.T, path string) (s *Store, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Open panicked: %v", r)
		}
	}()
	return Open(path, WithLockTimeout(100*time.Millisecond))
}

// Defect 5 of issue 11: a damaged file is refused with a message that says
// what happened and what to do, never with a panic (a crash loop), and an
// empty one is not taken for a new store (that orphans every endpoint).
func TestDamagedFileIsRefusedClearly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"half truncated", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, "cannot be read"},
		{"zeroed", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			if err := os.WriteFile(path, make([]byte, fi.Size()), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "cannot be read"},
		{"truncated to 0 bytes", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filled(t, 200)
			tc.damage(t, path)
			s, err := openNoPanic(t, path)
			if err == nil {
				s.Close()
				t.Fatal("a damaged store file was opened")
			}
			if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "backup") {
				t.Errorf("error %q: want ErrUnreadable saying %q and pointing to a backup", err, tc.want)
			}
		})
	}
}

// One garbled page, many times over at random places: Open refuses the
// file, or it serves every record it can read; it never panics, and List
// does not fail for ever on one bad record.
func TestGarbledPageNeverPanics(t *testing.T) {
	clean, err := os.ReadFile(filled(t, 200))
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "orchestrator.db")
			raw := append([]byte(nil), clean...)
			rnd := rand.New(rand.NewPCG(seed, 11))
			const page = 4096
			pg := 2 + rnd.IntN(len(raw)/page-2) // keep the two meta pages
			for i := range page {
				raw[pg*page+i] = byte(rnd.UintN(256))
			}
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := openNoPanic(t, path)
			if err != nil {
				if !errors.Is(err, ErrUnreadable) {
					t.Errorf("refused without ErrUnreadable: %v", err)
				}
				return
			}
			defer s.Close()
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("List panicked: %v", r)
					}
				}()
				if _, _, err := s.List(t.Context(), store.ListQuery{Limit: 500}); err != nil {
					t.Errorf("List: %v", err)
				}
			}()
		})
	}
}

// An unreadable record is skipped and reported; the others are listed.
func TestUnreadableRecordIsSkipped(t *testing.T) {
	path := filled(t, 5)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketDeployments).Put([]byte("dep_2026_00000003"), []byte("{garbled\x00\x17"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := openNoPanic(t, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, next, err := s.List(t.Context(), store.ListQuery{Limit: 2})
	var ids []string
	for err == nil {
		for _, d := range got {
			ids = append(ids, d.ID)
		}
		if next == "" {
			break
		}
		got, next, err = s.List(t.Context(), store.ListQuery{Limit: 2, Cursor: next})
	}
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := "dep_2026_00000005 dep_2026_00000004 dep_2026_00000002 dep_2026_00000001"
	if strings.Join(ids, " ") != want {
		t.Errorf("listed %v, want %s", ids, want)
	}
	if _, err := s.Get(t.Context(), "dep_2026_00000003"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of the unreadable record: %v, want an error that is not not-found", err)
	}
	if u := s.Unreadable(); len(u) != 1 || u[0] != "dep_2026_00000003" {
		t.Errorf("Unreadable() = %v", u)
	}
}

func TestSecondProcessIsToldTheFileIsLocked(t *testing.T) {
	path := filled(t, 1)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s2, err := Open(path, WithLockTimeout(50*time.Millisecond))
	if err == nil {
		s2.Close()
		t.Fatal("opened twice")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("error %q, want it to say the file is locked by another process", err)
	}
}
