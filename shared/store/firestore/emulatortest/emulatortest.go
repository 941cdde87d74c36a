// Package emulatortest helps tests use the Firestore emulator: find it
// (skip, or fail under REQUIRE_EMULATORS=1, when it is not running), and
// give each test a fresh project that is wiped when the test ends.
package emulatortest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/store/storetest"
)

// HowTo says how to get the emulator.
const HowTo = storetest.HowToFirestore

// Host returns FIRESTORE_EMULATOR_HOST (see storetest.RequireEnv).
func Host(t testing.TB) string {
	t.Helper()
	return storetest.RequireEnv(t, "FIRESTORE_EMULATOR_HOST", HowTo)
}

// Project returns a fresh project id, prefix-<random>, wiped at the end.
func Project(t testing.TB, prefix string) string {
	t.Helper()
	host := Host(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	p := prefix + "-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { Wipe(t, host, p) })
	return p
}

// Wipe deletes every document of project in the emulator at host.
func Wipe(t testing.TB, host, project string) {
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
