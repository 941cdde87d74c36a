package deployment

import (
	"fmt"
	"hash/fnv"
	"time"
)

// Limits are the owner's limits of a deployment: when one is passed, the
// deployment is deleted like a DELETE (its endpoint torn down), with a
// reason, and the owner gets the deployment.deleted webhook.
type Limits struct {
	// MaxSpendUSD, when above zero, is the most the endpoint may cost, as
	// RunPod's billing reports it (Spend).
	MaxSpendUSD float64 `json:"max_spend_usd,omitempty"`
	// ExpiresAt, when set, is when the deployment is deleted.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// ExpiryDefaulted says ExpiresAt is the operator's default time limit,
	// not one the owner set.
	ExpiryDefaulted bool `json:"expiry_defaulted,omitempty"`
	// Changes counts the changes of ExpiresAt (PATCH): it names the expire
	// task, so a new expiry gets a task of its own.
	Changes int `json:"changes,omitempty"`
}

// Spend is what the endpoint has cost so far, as last read from RunPod's
// billing API (GET /v2/billing/serverless), whose records are time buckets.
type Spend struct {
	USD float64 `json:"usd"`
	// ReadAt is when the figure was read; zero when never.
	ReadAt time.Time `json:"read_at,omitzero"`
	// Since is the start of the first bucket summed (the endpoint's
	// creation, rounded down to the bucket).
	Since time.Time `json:"since,omitzero"`
	// BucketSeconds is the length of RunPod's billing buckets the figure
	// sums: how coarse it is.
	BucketSeconds int `json:"bucket_seconds,omitempty"`
	// Reads counts the reads (and failed attempts): it names the spend task.
	Reads int `json:"reads,omitempty"`
	// NextReadAt is when the next read is due.
	NextReadAt time.Time `json:"next_read_at,omitzero"`
	// LastError is why the last read failed, if it did.
	LastError string `json:"last_error,omitempty"`
	// FailingSince is when the reads began to fail (zero while the last
	// one succeeded).
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Version is the record's Version after the last write of a read, and
	// WorkAt the record's UpdatedAt before the reads began to write it:
	// the reads write the record every few minutes, which is no progress
	// of the other work it owes (see Deployment.Overdue).
	Version int64     `json:"version,omitempty"`
	WorkAt  time.Time `json:"work_at,omitzero"`
}

// Deletion reasons.
const (
	// ReasonOwner: the owner asked (DELETE).
	ReasonOwner = "deleted_by_owner"
	// ReasonMaxSpend: the spend reached max_spend_usd.
	ReasonMaxSpend = "max_spend_reached"
	// ReasonExpired: expires_at (or the operator's default time limit) passed.
	ReasonExpired = "expired"
)

// EventDeleted is the webhook event of a deployment a limit deleted.
const EventDeleted = "deployment.deleted"

// Live reports whether d may still cost money for the owner's use: it is
// neither failed nor deleted. Limits apply to live deployments only.
func (d *Deployment) Live() bool {
	return d.Status.Valid() && d.Status != StatusFailed && d.Status != StatusDeleted
}

// LimitReached deletes a live deployment because a limit was passed: status
// deleted with the reason, a log line with the detail, and the webhook
// state made ready for the deployment.deleted event (its tasks numbered
// past the earlier event's, so they get names of their own). It returns a *TransitionError when d is not live.
func (d *Deployment) LimitReached(now time.Time, reason, detail string) error {
	if !d.Live() {
		return &TransitionError{From: d.Status, To: StatusDeleted}
	}
	if err := d.Transition(now, StatusDeleted); err != nil {
		return err
	}
	d.DeletedReason = reason
	d.Log(now, LevelWarn, "Deleting the deployment: %s; tearing the RunPod endpoint down", detail)
	// The earlier event's tasks took the numbers up to SeqBase+Attempts
	// (the last one maybe still queued, for an attempt still owed).
	w := &d.Webhook
	*w = Webhook{URL: w.URL, SeqBase: w.SeqBase + w.Attempts + 1}
	return nil
}

// SpendDue reports whether d owes reads of its spend: it is live and has
// an endpoint. Every live endpoint's spend is read the same way (the spend
// step), whether or not its owner set max_spend_usd: the figure is shown,
// and checked against the limit when there is one.
func (d *Deployment) SpendDue() bool {
	return d.Live() && d.RunPodEndpointID != "" && !d.EndpointDeleted
}

// NextSpendRead is when the read after the one made at read is due: one
// interval later, give or take a tenth of it, the same for every copy of a
// read (a hash of the deployment's id and the reads counted) and different
// from one deployment to the next. Every live endpoint's spend is read, so
// reads that came due together (a restart, the reconciler's first pass
// after an upgrade) spread out over the next intervals instead of reaching
// the queue and RunPod's billing API in one burst each time.
func (d *Deployment) NextSpendRead(read time.Time, interval time.Duration) time.Time {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", d.ID, d.Spend.Reads)
	// A fraction in [-0.1, 0.1) of the interval.
	f := float64(h.Sum64()%2000)/10000 - 0.1
	return read.Add(interval + time.Duration(f*float64(interval)))
}

// PricePerSecond is a price per hour in USD divided into seconds.
func PricePerSecond(perHour float64) float64 { return perHour / 3600 }

// SpendSummary is a one-line account of a spend figure for logs.
func SpendSummary(usd, max float64) string {
	return fmt.Sprintf("spend $%.4f reached the limit $%.2f", usd, max)
}
