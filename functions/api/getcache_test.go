package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
)

// uncachedGet is what GET answers for the stored record without the cache.
func uncachedGet(t *testing.T, f *fixture, id string) []byte {
	t.Helper()
	d, err := f.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := httpx.EncodeJSON(d.Public(true))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGetCacheNeverStale: every GET, warm cache or not, answers exactly
// what the stored record's encoding is, through writes of every kind
// (status, progress, logs, webhook state, a write that changes nothing the
// owner sees).
func TestGetCacheNeverStale(t *testing.T) {
	f := newFixture(t)
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	path := "/v1/deployments/" + id
	writes := []func(d *deployment.Deployment) error{
		func(d *deployment.Deployment) error { return d.Transition(*f.clock, deployment.StatusSelectingGPU) },
		func(d *deployment.Deployment) error { d.Log(*f.clock, deployment.LevelInfo, "a line"); return nil },
		func(d *deployment.Deployment) error {
			d.Progress = deployment.Progress{Phase: deployment.StatusDownloadingModel, BytesDone: 1, BytesTotal: 10}
			return nil
		},
		func(d *deployment.Deployment) error { d.Progress.BytesDone = 2; return nil },
		func(d *deployment.Deployment) error { d.Retries++; return nil }, // not shown: the body stays equal
		func(d *deployment.Deployment) error { d.Webhook.Attempts++; return nil },
		func(d *deployment.Deployment) error { return d.Transition(*f.clock, deployment.StatusFailed) },
	}
	for i := 0; i <= len(writes); i++ {
		for range 3 { // a miss, then hits
			rec := f.do(t, "GET", path, keyA, "")
			if rec.Code != http.StatusOK {
				t.Fatalf("after write %d: GET = %d %s", i, rec.Code, rec.Body)
			}
			if want := uncachedGet(t, f, id); !bytes.Equal(rec.Body.Bytes(), want) {
				t.Fatalf("after write %d: GET answered\n%s\nthe record is\n%s", i, rec.Body, want)
			}
			for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("after write %d: %s = %q, want %q", i, k, got, v)
				}
			}
		}
		if i == len(writes) {
			break
		}
		*f.clock = f.clock.Add(time.Second)
		if _, err := f.store.Update(context.Background(), id, writes[i]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGetCacheOwnerAndSecrets: a warm cache answers another owner's key
// with the same 404 as a cold one, and the cached answer holds no secret
// (neither the plain keys nor their sealed bytes).
func TestGetCacheOwnerAndSecrets(t *testing.T) {
	f := newFixture(t)
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	path := "/v1/deployments/" + id
	first := f.do(t, "GET", path, keyA, "").Body.Bytes()
	if rec := f.do(t, "GET", path, keyB, ""); rec.Code != http.StatusNotFound || body(t, rec)["error"] != "DeploymentNotFoundError" {
		t.Errorf("another key, warm cache: %d %s", rec.Code, rec.Body)
	}
	d, err := f.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	cached := f.srv.encoded.get(d)
	if cached == nil {
		t.Fatal("GET did not cache its answer")
	}
	if !bytes.Equal(cached, first) {
		t.Errorf("cached %s, answered %s", cached, first)
	}
	secrets := [][]byte{[]byte("rpa_SECRET123"), []byte("hf_SECRET456"), []byte(d.RunPodKey), []byte(d.HFToken),
		[]byte(base64.StdEncoding.EncodeToString(d.RunPodKey)), []byte(base64.StdEncoding.EncodeToString(d.HFToken))}
	for _, s := range secrets {
		if len(s) > 0 && (bytes.Contains(cached, s) || bytes.Contains(first, s)) {
			t.Errorf("the GET answer holds a secret (%d bytes)", len(s))
		}
	}
}

func TestEncodedCache(t *testing.T) {
	var c encodedCache
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	d := func(id string, v int64, upd time.Time) *deployment.Deployment {
		return &deployment.Deployment{ID: id, Version: v, UpdatedAt: upd}
	}
	c.put(d("a", 0, at), []byte("never stored"))
	if got := c.get(d("a", 0, at)); got != nil {
		t.Errorf("a record without a version was cached: %q", got)
	}
	c.put(d("a", 2, at), []byte("v2"))
	for _, tc := range []struct {
		d    *deployment.Deployment
		want string
	}{
		{d("a", 2, at), "v2"},
		{d("a", 3, at), ""},                  // a newer version
		{d("a", 1, at), ""},                  // an older one
		{d("a", 2, at.Add(time.Second)), ""}, // the same version written again (UpdatedAt differs)
		{d("b", 2, at), ""},
	} {
		if got := string(c.get(tc.d)); got != tc.want {
			t.Errorf("get(%s v%d %s) = %q, want %q", tc.d.ID, tc.d.Version, tc.d.UpdatedAt, got, tc.want)
		}
	}
	c.put(d("a", 1, at), []byte("v1")) // a slow reader of an older version
	if got := string(c.get(d("a", 2, at))); got != "v2" {
		t.Errorf("an older version replaced the newer: get(v2) = %q", got)
	}
	for i := range 3 * encodedCacheSize {
		c.put(d(fmt.Sprint("id-", i), 1, at), []byte("x"))
	}
	if n := len(c.m); n > encodedCacheSize {
		t.Errorf("%d entries, above the bound %d", n, encodedCacheSize)
	}
}

// TestPatchAnswersFromTheSameCache: PATCH answers the record it wrote (or,
// for the same values again, the current one), never a cached older one.
func TestPatchAnswersFromTheSameCache(t *testing.T) {
	f := newFixture(t)
	id := body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string)
	path := "/v1/deployments/" + id
	f.do(t, "GET", path, keyA, "") // warm
	for i, patch := range []string{`{"max_workers":2}`, `{"max_workers":2}`, `{"max_workers":3}`} {
		*f.clock = f.clock.Add(time.Second)
		rec := f.do(t, "PATCH", path, keyA, patch)
		if rec.Code != http.StatusOK {
			t.Fatalf("PATCH %d = %d %s", i, rec.Code, rec.Body)
		}
		want := uncachedGet(t, f, id)
		if !bytes.Equal(rec.Body.Bytes(), want) {
			t.Fatalf("PATCH %d answered\n%s\nthe record is\n%s", i, rec.Body, want)
		}
		if got := f.do(t, "GET", path, keyA, "").Body.Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("GET after PATCH %d answered\n%s\nthe record is\n%s", i, got, want)
		}
	}
}

// TestListEncodingIsTheMapsEncoding: the list assembled from cached items
// is byte for byte the encoding of its map, empty or not, with or without a
// next cursor, and follows every write.
func TestListEncodingIsTheMapsEncoding(t *testing.T) {
	f := newFixture(t)
	check := func(what, query string) {
		t.Helper()
		rec := f.do(t, "GET", "/v1/deployments"+query, keyA, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: list = %d %s", what, rec.Code, rec.Body)
		}
		page := body(t, rec)
		var items []*deployment.Deployment
		for _, it := range page["deployments"].([]any) {
			d, err := f.store.Get(context.Background(), it.(map[string]any)["deployment_id"].(string))
			if err != nil {
				t.Fatal(err)
			}
			items = append(items, d)
		}
		next, _ := page["next_cursor"].(string)
		want, err := httpx.EncodeJSON(listAnswer(items, next))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rec.Body.Bytes(), want) {
			t.Fatalf("%s: the list answered\n%s\nthe map encodes\n%s", what, rec.Body, want)
		}
		if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", what, rec.Header())
		}
	}
	check("empty", "")
	var ids []string
	for range 3 {
		*f.clock = f.clock.Add(time.Second)
		ids = append(ids, body(t, f.do(t, "POST", "/v1/deployments", keyA, validCreate))["deployment_id"].(string))
	}
	check("three", "")
	check("three, warm", "")
	check("a page of one with a cursor", "?limit=1")
	if _, err := f.store.Update(context.Background(), ids[1], func(d *deployment.Deployment) error {
		d.Log(*f.clock, deployment.LevelInfo, "<a line with & and >") // logs are not listed; the version changes
		return d.Transition(*f.clock, deployment.StatusSelectingGPU)
	}); err != nil {
		t.Fatal(err)
	}
	check("after a write", "")
	if got := body(t, f.do(t, "GET", "/v1/deployments", keyA, ""))["deployments"].([]any)[1].(map[string]any)["status"]; got != "selecting_gpu" {
		t.Errorf("after a write the list shows status %v", got)
	}
}
