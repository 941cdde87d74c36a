package runpodsim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/wait"
)

// TestServerlessBillingByTime: a running worker costs its GPU's price by
// the second (sped up here), the record is the endpoint's alone, and a
// deleted endpoint stops costing but keeps its records.
func TestServerlessBillingByTime(t *testing.T) {
	const speed = 3600.0 // a second bills an hour
	s := runpodsim.New(runpodsim.WithBootDelay(time.Millisecond), runpodsim.WithCallbackInterval(time.Millisecond),
		runpodsim.WithBillingSpeed(speed))
	t.Cleanup(s.Close)
	const key = "rpa_billing_key_0123"
	s.AddAccount(key, 100)
	c := runpod.NewClient(s.URL, nil)
	ctx := context.Background()
	k := secret.New(key)
	ep, err := c.CreateEndpoint(ctx, k, runpod.EndpointSpec{Name: "billed", Image: "img:1", Pools: []string{"AMPERE_48"},
		WorkersMin: 1, WorkersMax: 1, IdleTimeout: 5, ContainerDiskGB: 20})
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.CreateEndpoint(ctx, k, runpod.EndpointSpec{Name: "other", Image: "img:1", Pools: []string{"AMPERE_48"},
		WorkersMin: 0, WorkersMax: 1, IdleTimeout: 5, ContainerDiskGB: 20})
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Minute)
	var first runpod.ServerlessSpend
	wait.Until(t, 10*time.Second, "the running worker's first charge", func() bool {
		if first, err = c.EndpointSpend(ctx, k, ep.ID, since); err != nil {
			t.Fatal(err)
		}
		return first.TotalUSD > 0
	})
	if first.TotalUSD <= 0 || first.Records < 1 {
		t.Fatalf("a running worker billed nothing: %+v", first)
	}
	if !first.From.Equal(since.UTC().Truncate(time.Hour)) || first.To.Sub(first.From) < time.Hour || first.To.Minute() != 0 {
		t.Errorf("window %v .. %v: want hour-aligned from %v", first.From, first.To, since.UTC().Truncate(time.Hour))
	}
	if sp, err := c.EndpointSpend(ctx, k, other.ID, since); err != nil || sp.TotalUSD != 0 {
		t.Errorf("an endpoint without workers: %+v, %v", sp, err)
	}
	if err := c.DeleteEndpoint(ctx, k, ep.ID); err != nil {
		t.Fatal(err)
	}
	after, err := c.EndpointSpend(ctx, k, ep.ID, since)
	if err != nil {
		t.Fatal(err)
	}
	if after.TotalUSD < first.TotalUSD {
		t.Fatalf("spend went down after delete: %v < %v", after.TotalUSD, first.TotalUSD)
	}
	// Time passes (a new worker elsewhere bills): the deleted one must not.
	third, err := c.CreateEndpoint(ctx, k, runpod.EndpointSpec{Name: "third", Image: "img:1", Pools: []string{"AMPERE_48"},
		WorkersMin: 1, WorkersMax: 1, IdleTimeout: 5, ContainerDiskGB: 20})
	if err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "another worker to bill as much as the deleted one did", func() bool {
		return s.Spent(key, third.ID) >= first.TotalUSD
	})
	later, err := c.EndpointSpend(ctx, k, ep.ID, since)
	if err != nil {
		t.Fatal(err)
	}
	if later.TotalUSD != after.TotalUSD {
		t.Errorf("a deleted endpoint kept billing: %v then %v", after.TotalUSD, later.TotalUSD)
	}
	if got := s.Spent(key, ep.ID); fmt.Sprintf("%.9f", got) != fmt.Sprintf("%.9f", later.TotalUSD) {
		t.Errorf("Spent = %v, billing API says %v", got, later.TotalUSD)
	}
}

func TestServerlessBillingRefusesBadQueries(t *testing.T) {
	s := runpodsim.New()
	t.Cleanup(s.Close)
	s.AddAccount("rpa_k", 1)
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"bucketSize=minute", 422},
		{"lastN=0", 422},
		{"lastN=2&startTime=2026-01-01T00:00:00Z", 400},
		{"startTime=yesterday", 422},
		{"colour=red", 400},
		{"lastN=3&bucketSize=hour", 200},
		{"startTime=2026-06-01T00:00:00Z&endTime=2026-06-02T00:00:00Z", 200},
	} {
		a := call(t, s, "GET", "/v2/billing/serverless?"+tc.query, "Bearer rpa_k", "")
		if a.status != tc.want {
			t.Errorf("%s: status %d, want %d (%v)", tc.query, a.status, tc.want, a.body)
		}
	}
}
