package firestore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/firestore/emulatortest"
	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
)

func TestConformance(t *testing.T) {
	host := emulatortest.Host(t)
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
		t.Cleanup(func() { emulatortest.Wipe(t, host, project) })
		return s
	})
}

// TestDocRoundTrip needs no emulator: every field of a deployment survives
// the document mapping, to the microsecond.
func TestDocRoundTrip(t *testing.T) {
	in := storetest.Filled(t, "dep_2026_00000001", "owner", time.Date(2026, 11, 1, 0, 0, 0, 123456789, time.UTC))
	data, err := encodeDeployment(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeDeployment(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got, cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("deployment → document → deployment (-in +out):\n%s", diff)
	}
	if got.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("CreatedAt %v not rounded to the microsecond", got.CreatedAt)
	}
	// Nothing is shared with the document.
	data["logs"].([]any)[0].(map[string]any)["message"] = "changed"
	data["runpod_key"].([]byte)[0] ^= 0xff
	if diff := cmp.Diff(in, got, cmpopts.EquateApproxTime(time.Microsecond)); diff != "" {
		t.Errorf("changing the document changed the record (-in +out):\n%s", diff)
	}
}

// TestDocumentShape pins what queries, indexes and other readers of the
// documents (the change trigger) rely on: names and Firestore types.
func TestDocumentShape(t *testing.T) {
	d := storetest.Filled(t, "dep_2026_00000001", "owner-1", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	d.ReadyAt = time.Time{}
	d.Webhook.DeliveredAt = time.Time{}
	d.UpdatedAt = time.Time{}
	data, err := encodeDeployment(d)
	if err != nil {
		t.Fatal(err)
	}
	typeOf := func(path ...string) string {
		var x any = data
		for _, p := range path {
			switch v := x.(type) {
			case map[string]any:
				var ok bool
				if x, ok = v[p]; !ok {
					return "missing"
				}
			case []any:
				x = v[0]
			default:
				return fmt.Sprintf("%T has no %s", x, p)
			}
		}
		return fmt.Sprintf("%T", x)
	}
	tests := []struct {
		path []string
		want string
	}{
		{[]string{fieldOwner}, "string"},
		{[]string{fieldStatus}, "string"},
		{[]string{fieldCreatedAt}, "time.Time"},
		{[]string{fieldStatusChangedAt}, "time.Time"},
		{[]string{"updated_at"}, "time.Time"}, // zero, but not optional: a timestamp
		{[]string{"ready_at"}, "<nil>"},       // zero and omitzero: null
		{[]string{"version"}, "int64"},
		{[]string{"runpod_key"}, "[]uint8"},
		{[]string{"hf_token"}, "[]uint8"},
		{[]string{"logs", "0", "timestamp"}, "time.Time"},
		{[]string{"logs", "0", "level"}, "string"},
		{[]string{"webhook", "url"}, "string"},
		{[]string{"webhook", "delivered_at"}, "<nil>"},
		{[]string{"webhook", "last_attempt_at"}, "time.Time"},
		{[]string{"scaling", "max_workers"}, "int64"},
		{[]string{"gpu_pools", "0"}, "string"},
	}
	for _, tc := range tests {
		if got := typeOf(tc.path...); got != tc.want {
			t.Errorf("document field %v: %s, want %s", tc.path, got, tc.want)
		}
	}
}

func TestDecodeDocument(t *testing.T) {
	tests := []struct {
		name    string
		data    map[string]any
		want    *deployment.Deployment
		wantErr bool
	}{
		{
			name: "unknown fields are ignored",
			data: map[string]any{"id": "dep_2026_00000001", "from_the_future": int64(1), "version": int64(3)},
			want: &deployment.Deployment{ID: "dep_2026_00000001", Version: 3},
		},
		{
			name: "null is zero",
			data: map[string]any{"id": "dep_2026_00000001", "ready_at": nil, "logs": nil, "watch": nil},
			want: &deployment.Deployment{ID: "dep_2026_00000001"},
		},
		{name: "wrong type", data: map[string]any{"version": "three"}, wantErr: true},
		{name: "wrong nested type", data: map[string]any{"logs": []any{map[string]any{"timestamp": "noon"}}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeDeployment(tc.data)
			if (err != nil) != tc.wantErr {
				t.Fatalf("decodeDeployment: err = %v, want error: %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decodeDeployment (-want +got):\n%s", diff)
			}
		})
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
			// A bound well below the test's limit: the margin is for a
			// loaded machine's scheduling and the gRPC teardown.
			s, err := New(t.Context(), "ping-test", WithPingTimeout(200*time.Millisecond))
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
