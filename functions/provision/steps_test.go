package provision

import (
	"slices"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
)

// Every step a record can owe has a handler, and no handler serves a step
// the record cannot owe: the two lists are one.
func TestEveryStepHasAHandler(t *testing.T) {
	h := (&Steps{}).handlers()
	for _, step := range deployment.Steps {
		if h[step] == nil {
			t.Errorf("deployment.Steps has %q, which Handle would drop as unknown", step)
		}
	}
	for step := range h {
		if !slices.Contains(deployment.Steps, step) {
			t.Errorf("Handle serves %q, which deployment.Steps does not list", step)
		}
	}
}
