package runpod_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// TestEndpointSpendRefusesUnusableAnswers (issue 23, item 6): a billing
// answer without a records list, with a negative amount, or with another
// endpoint's records is an error saying so, never $0.
func TestEndpointSpendRefusesUnusableAnswers(t *testing.T) {
	const ep = "ep123"
	for _, c := range []struct {
		name, body, want string
	}{
		{"no records list", `{}`, "has no records list"},
		{"negative amount", `{"records":[{"serverlessId":"ep123","totalAmount":-5}]}`, "holds an amount of -5"},
		{"another endpoint", `{"records":[{"serverlessId":"other","totalAmount":0.5}]}`, "another endpoint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			got, err := runpod.NewClient(srv.URL, nil).EndpointSpend(testCtx(t), secret.New(testKey), ep, time.Now().Add(-time.Hour))
			if err == nil || !strings.Contains(runpod.Message(err), c.want) {
				t.Fatalf("EndpointSpend = %+v, %v; want an error saying %q", got, err, c.want)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Error("the error carries the key")
			}
		})
	}
	// An empty list is a read of nothing spent.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"records":[]}`))
	}))
	defer srv.Close()
	if got, err := runpod.NewClient(srv.URL, nil).EndpointSpend(testCtx(t), secret.New(testKey), ep, time.Now()); err != nil || got.TotalUSD != 0 {
		t.Errorf("empty records: %+v, %v", got, err)
	}
}
