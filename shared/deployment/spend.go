package deployment

import (
	"fmt"
	"math"
	"time"
)

// SpendRead is one read of what an endpoint cost, from RunPod's billing API.
type SpendRead struct {
	// USD is the sum of the endpoint's billing records (when Err is empty).
	USD float64
	// Since is the start of the first bucket summed; BucketSeconds the
	// length of the buckets.
	Since         time.Time
	BucketSeconds int
	// Err, when not empty, is why the read failed: a sentence for the
	// owner, never a transport detail.
	Err string
}

// maxPlausiblePerHour is the price of one worker an hour the plausibility
// bound assumes when the deployment has no price: above any RunPod GPU's.
const maxPlausiblePerHour = 50.0

// SpendCeiling is the most d's endpoint can plausibly have cost from since
// to now: twice what its most workers (max_workers) cost at the dearest
// pool it may run on, over every billing bucket summed (the current one
// whole). A billing figure above it is not believed.
func (d *Deployment) SpendCeiling(since, now time.Time) float64 {
	perHour := maxPlausiblePerHour
	if d.Price != nil && max(d.Price.PerHourUSD, d.Price.FallbackMaxPerHourUSD) > 0 {
		perHour = max(d.Price.PerHourUSD, d.Price.FallbackMaxPerHourUSD)
	}
	workers := max(d.Scaling.MaxWorkers, d.Scaling.MinWorkers, 1)
	hours := math.Ceil(max(0, now.Sub(since).Hours())) + 1
	return 2 * float64(workers) * perHour * hours
}

// SpendEstimate is what d's endpoint has cost at least, from the chosen
// pool's price and the time of the workers known to run: one warm worker
// from the endpoint's creation until the model is ready, then min_workers
// warm workers, until the deployment ends. Workers started for jobs are not
// counted, so the true cost may be higher, never lower (RunPod bills a
// worker by the second while it runs). Zero without a price or an endpoint.
func (d *Deployment) SpendEstimate(now time.Time) float64 {
	if d.Price == nil || d.Watch.StartedAt.IsZero() {
		return 0
	}
	end := now
	if !d.Live() && d.StatusChangedAt.Before(end) {
		end = d.StatusChangedAt
	}
	loadingEnd := end
	if !d.ReadyAt.IsZero() && d.ReadyAt.Before(end) {
		loadingEnd = d.ReadyAt
	}
	seconds := max(0, loadingEnd.Sub(d.Watch.StartedAt).Seconds())
	if !d.ReadyAt.IsZero() {
		seconds += float64(d.Scaling.MinWorkers) * max(0, end.Sub(d.ReadyAt).Seconds())
	}
	return seconds * PricePerSecond(d.Price.PerHourUSD)
}

// RecordSpend records a read of the endpoint's spend made at now (the spend
// step's): a figure above
// SpendCeiling, or negative, is refused like a failed read; a failed read
// keeps the last figure, says why and since when, and the log says so once
// per new reason. The limit is checked at each read: against the figure
// read, or, while the billing cannot be read, against SpendEstimate (a
// lower bound: when it reaches the limit, the spend has too). Passing it
// deletes d with ReasonMaxSpend (LimitReached).
func (d *Deployment) RecordSpend(now time.Time, r SpendRead) error {
	sp := &d.Spend
	if sp.Version == 0 || sp.Version != d.Version {
		sp.WorkAt = d.UpdatedAt // the last write was not a read's
	}
	sp.Version = d.Version + 1 // the store's write adds one
	if r.Err == "" {
		if ceiling := d.SpendCeiling(r.Since, now); !(r.USD >= 0) || r.USD > ceiling {
			r.Err = fmt.Sprintf("RunPod's billing reported $%.2f, which is not plausible (at most $%.2f since %s); the figure is not used",
				r.USD, ceiling, r.Since.UTC().Format(time.RFC3339))
		}
	}
	maxSpend := d.Limits.MaxSpendUSD
	if r.Err != "" {
		if sp.LastError != r.Err {
			d.Log(now, LevelWarn, "Could not read the endpoint's spend from RunPod (%s)", r.Err)
		}
		if sp.FailingSince.IsZero() {
			sp.FailingSince = now.UTC()
		}
		sp.LastError = r.Err
		if est := d.SpendEstimate(now); maxSpend > 0 && est >= maxSpend {
			return d.LimitReached(now, ReasonMaxSpend, fmt.Sprintf("estimated spend $%.4f (its warm workers' time at the pool's price; RunPod's billing unreadable since %s) reached the limit $%.2f",
				est, sp.FailingSince.Format(time.RFC3339), maxSpend))
		}
		return nil
	}
	sp.USD, sp.ReadAt, sp.LastError, sp.FailingSince = r.USD, now.UTC(), "", time.Time{}
	sp.Since, sp.BucketSeconds = r.Since.UTC(), r.BucketSeconds
	if maxSpend > 0 && r.USD >= maxSpend {
		return d.LimitReached(now, ReasonMaxSpend, SpendSummary(r.USD, maxSpend))
	}
	return nil
}
