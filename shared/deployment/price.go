package deployment

import (
	"math"
	"time"
)

// Price is what one worker of the chosen GPU pool costs, from the GPU
// catalogue at the time the pool was chosen.
type Price struct {
	// Pool is the preferred pool, the one the price is of.
	Pool string `json:"pool"`
	// PerHourUSD is RunPod's serverless list price of one worker (one GPU)
	// of Pool for an hour.
	PerHourUSD float64 `json:"per_hour_usd"`
	// FallbackMaxPerHourUSD is the highest price of the fallback pools
	// RunPod may place workers on when Pool has no capacity (0: none).
	FallbackMaxPerHourUSD float64 `json:"fallback_max_per_hour_usd,omitempty"`
	// CatalogAt is when the catalogue the price comes from was read from
	// RunPod; zero for the catalogue built into the service.
	CatalogAt time.Time `json:"catalog_at,omitzero"`
	// CatalogSource is "runpod" (the live catalogue) or "embedded".
	CatalogSource string `json:"catalog_source"`
}

// NewPrice is the price of one worker of pool from a catalogue read from
// RunPod at catalogAt (zero: the catalogue built into the service).
func NewPrice(pool string, perHour, fallbackMax float64, catalogAt time.Time) *Price {
	p := &Price{Pool: pool, PerHourUSD: perHour, FallbackMaxPerHourUSD: fallbackMax, CatalogAt: catalogAt.UTC(), CatalogSource: "embedded"}
	if !catalogAt.IsZero() {
		p.CatalogSource = "runpod"
	}
	return p
}

// PriceAssumes says what the price figures of PublicPrice assume.
const PriceAssumes = "RunPod's serverless list price (flex workers) of one GPU of the preferred pool, per worker, " +
	"billed per second while a worker runs (booting, loading, idle within its idle timeout, or serving); " +
	"one warm worker is kept while the model downloads and loads; fallback pools, if RunPod places workers " +
	"there, are priced up to fallback_max_per_hour_usd; storage, network and RunPod's fees are not included"

// PublicPrice is the price as the owner sees it.
type PublicPrice struct {
	Pool                  string     `json:"pool"`
	PerHourUSD            float64    `json:"per_hour_usd"`
	PerSecondUSD          float64    `json:"per_second_usd"`
	LoadingPerHourUSD     float64    `json:"loading_per_hour_usd"`
	IdlePerHourUSD        float64    `json:"idle_per_hour_usd"`
	MaxPerHourUSD         float64    `json:"max_per_hour_usd"`
	FallbackMaxPerHourUSD *float64   `json:"fallback_max_per_hour_usd"`
	CatalogSource         string     `json:"catalog_source"`
	CatalogAt             *time.Time `json:"catalog_at"`
	Assumes               string     `json:"assumes"`
}

// PublicPriceOf is p for a deployment scaled as sc.
func PublicPriceOf(p *Price, sc Scaling) *PublicPrice {
	if p == nil {
		return nil
	}
	out := &PublicPrice{
		Pool:              p.Pool,
		PerHourUSD:        p.PerHourUSD,
		PerSecondUSD:      PricePerSecond(p.PerHourUSD),
		LoadingPerHourUSD: p.PerHourUSD,
		IdlePerHourUSD:    float64(sc.MinWorkers) * p.PerHourUSD,
		MaxPerHourUSD:     float64(sc.MaxWorkers) * p.PerHourUSD,
		CatalogSource:     p.CatalogSource,
		CatalogAt:         tm(p.CatalogAt),
		Assumes:           PriceAssumes,
	}
	if p.FallbackMaxPerHourUSD > 0 {
		f := p.FallbackMaxPerHourUSD
		out.FallbackMaxPerHourUSD = &f
	}
	return out
}

// PublicLimits are the limits as the owner sees them.
type PublicLimits struct {
	MaxSpendUSD *float64   `json:"max_spend_usd"`
	ExpiresAt   *time.Time `json:"expires_at"`
	// ExpirySource is "owner" or "operator_default" (null without expiry).
	ExpirySource *string `json:"expiry_source"`
}

// SpendNote says how fresh and how coarse the spend figure is.
const SpendNote = "Sum of RunPod's serverless billing records for the endpoint (GET /v2/billing/serverless), " +
	"hourly buckets from the endpoint's creation up to the current, in-progress one, as RunPod reported them at read_at; " +
	"RunPod's own metering may lag by a few minutes, so the true cost can be a little higher"

// SpendEstimateNote says what an estimated spend figure is.
const SpendEstimateNote = "Estimate, not RunPod's billing (which has not been read yet, or could not be: see last_error): " +
	"the preferred pool's price per second times the time of the workers known to run (one while the model loads, " +
	"min_workers once ready); workers started for jobs are not counted, so the true cost may be higher"

// Spend sources.
const (
	SpendSourceBilling  = "runpod_billing"
	SpendSourceEstimate = "estimate"
)

// PublicSpend is the spend as the owner sees it.
type PublicSpend struct {
	USD float64 `json:"usd"`
	// Source is SpendSourceBilling or SpendSourceEstimate.
	Source        string     `json:"source"`
	ReadAt        *time.Time `json:"read_at"`
	Since         *time.Time `json:"since"`
	BucketSeconds int        `json:"bucket_seconds"`
	LastError     *string    `json:"last_error"`
	FailingSince  *time.Time `json:"failing_since"`
	Note          string     `json:"note"`
}

func (d *Deployment) publicLimits() PublicLimits {
	var l PublicLimits
	if d.Limits.MaxSpendUSD > 0 {
		m := d.Limits.MaxSpendUSD
		l.MaxSpendUSD = &m
	}
	if !d.Limits.ExpiresAt.IsZero() {
		l.ExpiresAt = tm(d.Limits.ExpiresAt)
		src := "owner"
		if d.Limits.ExpiryDefaulted {
			src = "operator_default"
		}
		l.ExpirySource = &src
	}
	return l
}

func (d *Deployment) publicSpend(now time.Time) *PublicSpend {
	sp := &d.Spend
	if !sp.ReadAt.IsZero() {
		return &PublicSpend{
			USD: sp.USD, Source: SpendSourceBilling, ReadAt: tm(sp.ReadAt), Since: tm(sp.Since),
			BucketSeconds: sp.BucketSeconds, LastError: str(sp.LastError), FailingSince: tm(sp.FailingSince), Note: SpendNote,
		}
	}
	if d.Price == nil || d.Watch.StartedAt.IsZero() {
		return nil // no endpoint yet: nothing spent
	}
	return &PublicSpend{
		USD: math.Round(d.SpendEstimate(now)*1e6) / 1e6, Source: SpendSourceEstimate, Since: tm(d.Watch.StartedAt),
		LastError: str(sp.LastError), FailingSince: tm(sp.FailingSince), Note: SpendEstimateNote,
	}
}
