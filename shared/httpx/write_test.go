package httpx

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWriteEncodedHeaders: the headers WriteEncoded assigns directly are
// the ones Header.Set would make (canonical keys, one value each), and a
// handler changing them in its answer (Add, Set, Del) never changes the
// next answer's: the shared values are not written in place.
func TestWriteEncodedHeaders(t *testing.T) {
	body := []byte(`{"a":1}` + "\n")
	want := http.Header{}
	want.Set("Content-Type", "application/json")
	want.Set("Cache-Control", "no-store")
	want.Set("X-Content-Type-Options", "nosniff")
	want.Set("Content-Length", "8")
	for i := range 3 {
		rec := httptest.NewRecorder()
		WriteEncoded(rec, http.StatusOK, body)
		if diff := cmp.Diff(want, rec.Header()); diff != "" {
			t.Fatalf("answer %d: headers (-Set +got):\n%s", i, diff)
		}
		if rec.Body.String() != string(body) || rec.Code != http.StatusOK {
			t.Fatalf("answer %d: %d %q", i, rec.Code, rec.Body)
		}
		h := rec.Header()
		h.Add("Cache-Control", "private")
		h.Add("Content-Type", "charset=utf-8")
		h.Set("X-Content-Type-Options", "changed")
		h.Del("Content-Length")
	}
	length := ContentLength(body)
	rec := httptest.NewRecorder()
	WriteEncodedLength(rec, http.StatusCreated, body, length)
	if diff := cmp.Diff(want, rec.Header()); diff != "" || rec.Code != http.StatusCreated {
		t.Fatalf("WriteEncodedLength: %d, headers (-Set +got):\n%s", rec.Code, diff)
	}
}

func TestNewRequestID(t *testing.T) {
	re := regexp.MustCompile(`^req_[0-9a-f]{16}$`)
	seen := map[string]bool{}
	for range 10000 {
		id := NewRequestID()
		if !re.MatchString(id) {
			t.Fatalf("request id %q, want req_ and 16 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("request id %q made twice", id)
		}
		seen[id] = true
	}
}
