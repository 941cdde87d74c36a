// Package deployment is the domain at the centre of the orchestrator: the
// deployment record, its statuses and the transitions allowed between them.
// It imports no cloud SDK.
package deployment

import "fmt"

// Status is where a deployment is in its life.
type Status string

// The statuses, in the order a healthy deployment goes through them.
const (
	StatusValidating       Status = "validating"
	StatusSelectingGPU     Status = "selecting_gpu"
	StatusCreatingEndpoint Status = "creating_endpoint"
	StatusDownloadingModel Status = "downloading_model"
	StatusLoadingModel     Status = "loading_model"
	StatusReady            Status = "ready"
	StatusFailed           Status = "failed"
	StatusWebhookFailed    Status = "webhook_failed"
	StatusDeleted          Status = "deleted"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{
	StatusValidating, StatusSelectingGPU, StatusCreatingEndpoint, StatusDownloadingModel,
	StatusLoadingModel, StatusReady, StatusFailed, StatusWebhookFailed, StatusDeleted,
}

// progress ranks the statuses of the provisioning chain.
var progress = map[Status]int{
	StatusValidating:       1,
	StatusSelectingGPU:     2,
	StatusCreatingEndpoint: 3,
	StatusDownloadingModel: 4,
	StatusLoadingModel:     5,
	StatusReady:            6,
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	for _, k := range Statuses {
		if s == k {
			return true
		}
	}
	return false
}

// Provisioning reports whether s is a status of the chain before ready: the
// orchestrator still has work to do for the deployment.
func (s Status) Provisioning() bool {
	r := progress[s]
	return r > 0 && r < progress[StatusReady]
}

// Final reports whether no provisioning work remains: ready, failed,
// webhook_failed or deleted. Only deleted admits no further transition.
func (s Status) Final() bool { return s.Valid() && !s.Provisioning() }

// CanTransition reports whether a deployment may move from s to next.
// Deployments never move backwards:
//   - along the chain only forwards (steps may be skipped: a silent container
//     can go from creating_endpoint straight to ready);
//   - failed from any provisioning status;
//   - webhook_failed only from ready;
//   - deleted from anything but deleted.
//
// Staying in the same status is not a transition.
func (s Status) CanTransition(next Status) bool {
	if !s.Valid() || !next.Valid() || s == next {
		return false
	}
	switch next {
	case StatusDeleted:
		return true
	case StatusFailed:
		return s.Provisioning()
	case StatusWebhookFailed:
		return s == StatusReady
	}
	from, to := progress[s], progress[next]
	return from > 0 && to > from
}

// TransitionError is returned when a transition is not allowed.
type TransitionError struct {
	From, To Status
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("deployment: transition from %s to %s is not allowed", e.From, e.To)
}
