package firestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
)

const howto = `start the emulator with: eval "$(scripts/firestore-emulator.sh start)"`

func TestConformance(t *testing.T) {
	host := storetest.RequireEnv(t, "FIRESTORE_EMULATOR_HOST", howto)
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	run := hex.EncodeToString(b[:])
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) storetest.Store {
		// A project of its own for every store: subtests run in parallel
		// and never see each other's documents.
		project := fmt.Sprintf("storetest-%s-%d", run, n.Add(1))
		s, err := New(t.Context(), project)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { wipe(t, host, project) })
		return s
	})
}

// wipe deletes every document of the project in the emulator.
func wipe(t *testing.T, host, project string) {
	u := url.URL{Scheme: "http", Host: host, Path: "/emulator/v1/projects/" + project + "/databases/(default)/documents"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.String(), nil)
	if err != nil {
		t.Errorf("wipe: %v", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("wipe %s: %v", project, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("wipe %s: %s", project, resp.Status)
	}
}

// TestDocRoundTrip needs no emulator: every field of a deployment survives
// the document mapping, to the microsecond.
func TestDocRoundTrip(t *testing.T) {
	in := storetest.Filled(t, "dep_2026_00000001", "owner", time.Date(2026, 11, 1, 0, 0, 0, 123456789, time.UTC))
	got := fromDoc(toDoc(in))
	if diff := cmp.Diff(in, got, cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("deployment → doc → deployment (-in +out):\n%s", diff)
	}
	if again := fromDoc(toDoc(got)); !cmp.Equal(got, again) {
		t.Errorf("the mapping is not stable: %s", cmp.Diff(got, again))
	}
	if got.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("CreatedAt %v not rounded to the microsecond", got.CreatedAt)
	}
}

// TestPingUnreachable needs no emulator: Ping fails within its timeout,
// whether the address refuses connections or accepts them and stays silent.
func TestPingUnreachable(t *testing.T) {
	refused := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	silent := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { c.Close() })
			}
		}()
		return l.Addr().String()
	}
	tests := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"connection refused", refused},
		{"silent server", silent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("FIRESTORE_EMULATOR_HOST", tc.addr(t))
			s, err := New(t.Context(), "ping-test")
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer s.Close()
			start := time.Now()
			err = s.Ping(t.Context())
			took := time.Since(start)
			if err == nil {
				t.Fatal("Ping of an unreachable Firestore: no error")
			}
			if took > 1500*time.Millisecond {
				t.Errorf("Ping took %v, want at most 1.5 s", took)
			}
		})
	}
}

func TestCursor(t *testing.T) {
	c := cursor{CreatedAt: time.Date(2026, 11, 1, 1, 2, 3, 4000, time.UTC), ID: "dep_2026_0000000a"}
	got, err := decodeCursor(c.encode())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("cursor round trip (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"%%%", "bm90IGpzb24", "e30"} { // not base64, "not json", "{}"
		if _, err := decodeCursor(bad); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("decodeCursor(%q): err = %v, want ErrBadCursor", bad, err)
		}
	}
}
