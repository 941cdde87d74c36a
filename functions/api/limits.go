package api

import (
	"fmt"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/httpx"
)

// Bounds of the limits a create or a PATCH may set.
const (
	MinSpendUSD = 0.01
	MaxSpendUSD = 100000
	MinTTL      = time.Minute
	MaxTTL      = 365 * 24 * time.Hour
)

// limitFields reads max_spend_usd and one of ttl_seconds or expires_at
// (an expiry from now). Each result is nil when the field is absent or
// invalid (the reason recorded in f).
type limitFields struct {
	maxSpend  *float64
	expiresAt *time.Time
}

func parseLimits(f *httpx.Fields, now time.Time) limitFields {
	var l limitFields
	if v, ok := f.Number("max_spend_usd", MinSpendUSD, MaxSpendUSD); ok {
		l.maxSpend = &v
	}
	if f.Given("ttl_seconds") && f.Given("expires_at") {
		f.Errs.Add("ttl_seconds", "give either ttl_seconds or expires_at, not both")
		f.Errs.Add("expires_at", "give either ttl_seconds or expires_at, not both")
		return l
	}
	if f.Given("ttl_seconds") {
		n := f.Int("ttl_seconds", int(MinTTL/time.Second), int(MaxTTL/time.Second), 0)
		if n > 0 {
			t := now.Add(time.Duration(n) * time.Second).UTC()
			l.expiresAt = &t
		}
	}
	if t, ok := f.Time("expires_at"); ok {
		switch {
		case t.Before(now.Add(MinTTL)):
			f.Errs.Add("expires_at", fmt.Sprintf("must be at least %s from now", MinTTL))
		case t.After(now.Add(MaxTTL)):
			f.Errs.Add("expires_at", "must be at most 365 days from now")
		default:
			l.expiresAt = &t
		}
	}
	return l
}
