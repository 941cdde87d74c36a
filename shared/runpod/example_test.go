package runpod_test

import (
	"context"
	"fmt"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/runpod"
	"github.com/visgate/deployment-orchestrator/shared/runpod/runpodsim"
	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// An idempotent create: look for the endpoint an earlier attempt may have
// made (by its env marker), create it only if absent, then tear it down.
func Example() {
	sim := runpodsim.New(runpodsim.WithBootDelay(10 * time.Millisecond))
	defer sim.Close()
	sim.AddAccount("rpa_example", 25)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := runpod.NewClient(sim.URL, nil)
	key := secret.New("rpa_example")

	for attempt := 1; attempt <= 2; attempt++ {
		e, err := c.FindEndpoint(ctx, key, "VISGATE_DEPLOYMENT_ID", "dep_2026_c1badc17")
		if err != nil {
			fmt.Println(err)
			return
		}
		if e == nil {
			e, err = c.CreateEndpoint(ctx, key, runpod.EndpointSpec{
				Name:       "visgate-dep_2026_c1badc17",
				Image:      "visgate/inference:1",
				Env:        map[string]string{"VISGATE_DEPLOYMENT_ID": "dep_2026_c1badc17"},
				Pools:      []string{"AMPERE_48", "ADA_48_PRO"},
				WorkersMin: 1,
				WorkersMax: 1,
			})
			if err != nil {
				fmt.Println(err)
				return
			}
			fmt.Println("attempt", attempt, "created an endpoint")
		} else {
			fmt.Println("attempt", attempt, "found the endpoint")
		}
	}
	fmt.Println("endpoints:", len(sim.Endpoints("rpa_example")))

	eps, _ := c.ListEndpoints(ctx, key)
	if err := c.DeleteEndpoint(ctx, key, eps[0].ID); err != nil {
		fmt.Println(err)
	}
	fmt.Println("after delete:", len(sim.Endpoints("rpa_example")))

	_, err := c.ListEndpoints(ctx, secret.New("rpa_wrong"))
	fmt.Println(err)
	// Output:
	// attempt 1 created an endpoint
	// attempt 2 found the endpoint
	// endpoints: 1
	// after delete: 0
	// listing RunPod endpoints: RunPod rejected the API key (401): invalid API key
}
