package deployment

import "time"

// Step is one unit of work the orchestrator does for a deployment; the
// ProvisionTask function runs it.
type Step string

// The steps: the four of the provisioning chain, then what a final status
// owes.
const (
	StepValidate       Step = "validate"
	StepSelectGPU      Step = "select_gpu"
	StepCreateEndpoint Step = "create_endpoint"
	StepWatch          Step = "watch"
	StepScale          Step = "scale"
	StepWebhook        Step = "webhook"
	StepTeardown       Step = "teardown"
	// StepExpire deletes a live deployment once its expires_at passed.
	StepExpire Step = "expire"
	// StepSpend reads what the endpoint cost so far (every live
	// endpoint's) and deletes the deployment once it reached max_spend_usd.
	StepSpend Step = "spend"
)

// Steps lists every step.
var Steps = []Step{
	StepValidate, StepSelectGPU, StepCreateEndpoint, StepWatch, StepScale, StepWebhook, StepTeardown,
	StepExpire, StepSpend,
}

// Valid reports whether s is one of the known steps.
func (s Step) Valid() bool {
	for _, k := range Steps {
		if s == k {
			return true
		}
	}
	return false
}

// statusStep is the step that moves a deployment out of each provisioning
// status.
var statusStep = map[Status]Step{
	StatusValidating:       StepValidate,
	StatusSelectingGPU:     StepSelectGPU,
	StatusCreatingEndpoint: StepCreateEndpoint,
	StatusDownloadingModel: StepWatch,
	StatusLoadingModel:     StepWatch,
}

// Watched reports whether the watch step moves a deployment out of s: the
// endpoint exists and the model is not ready yet.
func (s Status) Watched() bool { return statusStep[s] == StepWatch }

// Owed is one piece of work a deployment owes.
type Owed struct {
	Step Step
	// Seq tells this piece of work from earlier ones of the same step, and
	// is derived from the record, so that whoever sees the same record
	// names the same task (a duplicate is then dropped by the queue) and
	// work that becomes owed again gets a fresh name:
	//   - the step of a provisioning status: 0 (a deployment enters each
	//     status once; the step numbers its own later runs 1, 2, ...);
	//   - scale: ScalingChanges (owed when the endpoint is known, and again
	//     after each change of the owner's scaling);
	//   - webhook: the attempts made so far (of every event), so every
	//     attempt is its own task;
	//   - expire: Limits.Changes, so a changed expiry gets a task of its own;
	//   - spend: Spend.Reads, so every read is its own task;
	//   - teardown: EndpointChanges, so that an endpoint learnt of after a
	//     teardown ran gets a teardown of its own.
	Seq int
	// NotBefore, when not zero, is when the work is due (the next webhook
	// attempt after a failed one).
	NotBefore time.Time
}

// Owes lists what d still owes, in the order it is due: the step of its
// provisioning status; once ready, scaling the endpoint to the user's
// settings; the webhook of its event while undelivered; once failed or
// deleted, tearing down every endpoint that may exist; while live, the
// deletion at its expires_at and the reads of its spend (which delete it at
// its max_spend_usd): limits are status effects of this rule. It is the one rule
// of what a deployment needs next: the change feed (or the Firestore
// trigger) enqueues what a write made newly owed, the embedded runtime's
// start enqueues all of it, the reconciler what is overdue (Overdue), and
// steps and handlers only commit status changes.
func (d *Deployment) Owes() []Owed {
	var owed []Owed
	if step, ok := statusStep[d.Status]; ok {
		owed = append(owed, Owed{Step: step})
	}
	if (d.Status == StatusReady || d.Status == StatusWebhookFailed) && !d.Scaled && d.RunPodEndpointID != "" {
		owed = append(owed, Owed{Step: StepScale, Seq: d.ScalingChanges})
	}
	if d.WebhookPending() {
		owed = append(owed, Owed{Step: StepWebhook, Seq: d.Webhook.SeqBase + d.Webhook.Attempts, NotBefore: d.Webhook.NextAttemptAt})
	}
	if d.Live() && !d.Limits.ExpiresAt.IsZero() {
		owed = append(owed, Owed{Step: StepExpire, Seq: d.Limits.Changes, NotBefore: d.Limits.ExpiresAt})
	}
	if d.SpendDue() {
		owed = append(owed, Owed{Step: StepSpend, Seq: d.Spend.Reads, NotBefore: d.Spend.NextReadAt})
	}
	if (d.Status == StatusFailed || d.Status == StatusDeleted) && d.MayHaveEndpoint() {
		owed = append(owed, Owed{Step: StepTeardown, Seq: d.EndpointChanges})
	}
	return owed
}

// NeedsWork reports whether d owes anything.
func (d *Deployment) NeedsWork() bool { return len(d.Owes()) > 0 }

// Overdue lists the work d owes that is late by grace at now: due grace
// ago or earlier, with no progress since. Each piece is judged on its own
// due time and progress, never on the record's last write alone (the spend
// reads write it every few minutes, which would hide any other lost task):
//   - an expiry, a spend read or a webhook attempt by its own due time,
//     which each run moves on (a read sets the next, an attempt the next
//     one, an expiry deletes the deployment); when it has none (the first
//     read or attempt), by the write that made it owed;
//   - the step of a provisioning status, scale and teardown by the last
//     write that was not a spend read (entering the status, a poll, a
//     retry).
//
// The reconciler resumes what is overdue.
func (d *Deployment) Overdue(now time.Time, grace time.Duration) []Owed {
	cutoff := now.Add(-grace)
	var late []Owed
	for _, o := range d.Owes() {
		since := d.workAt()
		switch o.Step {
		case StepExpire, StepSpend, StepWebhook:
			if !o.NotBefore.IsZero() {
				since = o.NotBefore
			}
		}
		if !since.After(cutoff) {
			late = append(late, o)
		}
	}
	return late
}

// workAt is when d was last written by anything but a spend read.
func (d *Deployment) workAt() time.Time {
	if d.Spend.Version != 0 && d.Spend.Version == d.Version && !d.Spend.WorkAt.IsZero() {
		return d.Spend.WorkAt
	}
	return d.UpdatedAt
}

// MayHaveEndpoint reports whether a RunPod endpoint of d may exist: one is
// recorded, or a create_endpoint run took the lease to make one, and no
// teardown has deleted it since.
func (d *Deployment) MayHaveEndpoint() bool {
	return !d.EndpointDeleted && (d.RunPodEndpointID != "" || !d.EndpointLease.IsZero())
}

// Webhook event types.
const (
	EventReady  = "deployment.ready"
	EventFailed = "deployment.failed"
)

// limitReasons are the deletion reasons that owe the owner a webhook: a
// deletion the owner asked for does not.
var limitReasons = map[string]bool{ReasonMaxSpend: true, ReasonExpired: true}

// WebhookEvent is the webhook event d's status owes its owner, or "".
func (d *Deployment) WebhookEvent() string {
	switch d.Status {
	case StatusReady, StatusWebhookFailed:
		return EventReady
	case StatusFailed:
		return EventFailed
	case StatusDeleted:
		if limitReasons[d.DeletedReason] {
			return EventDeleted
		}
	}
	return ""
}

// WebhookPending reports whether d's webhook event is still to be
// delivered: there is one, a URL to send it to, and it was neither
// delivered nor given up on.
func (d *Deployment) WebhookPending() bool {
	return d.WebhookEvent() != "" && d.Webhook.URL != "" && !d.Webhook.Delivered && !d.Webhook.GaveUp
}

// EndpointLearnt records that an endpoint of d may exist that a teardown
// which already ran did not see (one was recorded, or a create_endpoint run
// ended without knowing whether it made one): the endpoint is no longer
// taken for deleted, and EndpointChanges gives the next teardown a name of
// its own.
func (d *Deployment) EndpointLearnt() {
	d.EndpointDeleted = false
	d.EndpointChanges++
}

// ScalingDrifted records what RunPod says the endpoint's scaling is (lo to
// hi workers, idle timeout idle seconds; 0: not said) on a deployment whose
// record says the owner's scaling was applied. When it differs, the scaling
// is owed again (a scale run of its own, by ScalingChanges) and the log
// says so. It reports whether d changed.
func (d *Deployment) ScalingDrifted(now time.Time, lo, hi, idle int) bool {
	if !d.Scaled || d.RunPodEndpointID == "" || d.EndpointDeleted || (d.Status != StatusReady && d.Status != StatusWebhookFailed) {
		return false
	}
	sc := d.Scaling
	if lo == sc.MinWorkers && hi == sc.MaxWorkers && (idle == 0 || sc.IdleTimeoutSeconds == 0 || idle == sc.IdleTimeoutSeconds) {
		return false
	}
	d.Scaled = false
	d.ScalingChanges++
	d.Log(now, LevelWarn, "RunPod scales endpoint %s between %d and %d workers (idle timeout %ds), not as asked (%d to %d, %ds): setting it again",
		d.RunPodEndpointID, lo, hi, idle, sc.MinWorkers, sc.MaxWorkers, sc.IdleTimeoutSeconds)
	return true
}

// Recurring reports whether o is work a deployment owes for as long as it
// lives (the reads of its spend), not a step towards a final state.
func (o Owed) Recurring() bool { return o.Step == StepSpend }

// Settled reports whether d owes nothing but recurring work: a ready
// deployment whose scaling and webhook are done, or a failed or deleted one
// whose teardown and webhook are.
func (d *Deployment) Settled() bool {
	for _, o := range d.Owes() {
		if !o.Recurring() {
			return false
		}
	}
	return true
}
