package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

var updateFields = map[string]bool{
	"max_spend_usd": true, "ttl_seconds": true, "expires_at": true,
	"min_workers": true, "max_workers": true, "idle_timeout_seconds": true,
}

// updateRequest is a validated PATCH body: nil fields are left as they are.
type updateRequest struct {
	limitFields
	minWorkers, maxWorkers, idleTimeout *int
}

func parseUpdate(raw map[string]json.RawMessage, now time.Time) (*updateRequest, *httpx.Error) {
	f := httpx.NewFields(raw)
	f.Unknown(updateFields)
	if len(raw) == 0 {
		f.Errs.Add("body", "give at least one of max_spend_usd, ttl_seconds, expires_at, min_workers, max_workers, idle_timeout_seconds")
	}
	req := &updateRequest{limitFields: parseLimits(f, now)}
	intField := func(name string, lo, hi int) *int {
		if !f.Given(name) {
			return nil
		}
		before := len(f.Errs)
		v := f.Int(name, lo, hi, 0)
		if len(f.Errs) != before {
			return nil
		}
		return &v
	}
	req.minWorkers = intField("min_workers", 0, MaxMinWorkers)
	req.maxWorkers = intField("max_workers", 1, MaxMaxWorkers)
	req.idleTimeout = intField("idle_timeout_seconds", MinIdleTimeoutSeconds, MaxIdleTimeoutSeconds)
	if e := f.Errs.Err(); e != nil {
		return nil, e
	}
	return req, nil
}

// apply changes d as req asks and reports whether anything changed, or
// returns the 422 of a scaling that is invalid once merged with d's
// (max_workers below min_workers).
func (req *updateRequest) apply(d *deployment.Deployment, now time.Time) (bool, *httpx.Error) {
	var changed []string
	sc := d.Scaling
	if req.minWorkers != nil {
		sc.MinWorkers = *req.minWorkers
	}
	if req.maxWorkers != nil {
		sc.MaxWorkers = *req.maxWorkers
	}
	if req.idleTimeout != nil {
		sc.IdleTimeoutSeconds = *req.idleTimeout
	}
	if sc.MaxWorkers < sc.MinWorkers {
		field := "max_workers"
		if req.maxWorkers == nil {
			field = "min_workers"
		}
		return false, httpx.FieldErrors{field: fmt.Sprintf("max_workers (%d) must be at least min_workers (%d)", sc.MaxWorkers, sc.MinWorkers)}.Err()
	}
	if sc != d.Scaling {
		d.Scaling = sc
		// The scale step owes a run of its own and applies it to the
		// endpoint once the model is ready (while it loads, one warm
		// worker is kept).
		d.Scaled = false
		d.ScalingChanges++
		changed = append(changed, fmt.Sprintf("scaling %d to %d workers, idle timeout %ds", sc.MinWorkers, sc.MaxWorkers, sc.IdleTimeoutSeconds))
	}
	if req.maxSpend != nil && *req.maxSpend != d.Limits.MaxSpendUSD {
		d.Limits.MaxSpendUSD = *req.maxSpend
		changed = append(changed, fmt.Sprintf("max_spend_usd %.2f", *req.maxSpend))
	}
	if req.expiresAt != nil && !req.expiresAt.Equal(d.Limits.ExpiresAt) {
		d.Limits.ExpiresAt, d.Limits.ExpiryDefaulted = *req.expiresAt, false
		// The expire step owes a run for the new time.
		d.Limits.Changes++
		changed = append(changed, "expires_at "+req.expiresAt.Format(time.RFC3339))
	}
	if len(changed) == 0 {
		return false, nil
	}
	d.Log(now, deployment.LevelInfo, "Changed by the owner: %s", strings.Join(changed, "; "))
	return true, nil
}

// update serves PATCH /v1/deployments/{id}: the limits and the scaling of a
// live deployment. What changes is owed work the change feed enqueues: the
// scale step applies a new scaling to the RunPod endpoint, the expire step
// waits for a new expiry, the spend step compares a new max_spend_usd at
// its next read.
func (s *Server) update(w http.ResponseWriter, r *http.Request, owner string) {
	d, ok := s.owned(w, r, owner)
	if !ok {
		return
	}
	body, herr := httpx.ReadBody(r)
	if herr != nil {
		httpx.WriteError(w, herr)
		return
	}
	raw, herr := httpx.ParseObject(body)
	if herr != nil {
		httpx.WriteError(w, herr)
		return
	}
	now := s.now()
	req, herr := parseUpdate(raw, now)
	if herr != nil {
		httpx.WriteError(w, herr)
		return
	}
	var refused *httpx.Error
	d, err := s.Store.Update(r.Context(), d.ID, func(d *deployment.Deployment) error {
		refused = nil // fn may run again after a concurrent write
		if !d.Live() {
			refused = httpx.Conflict(fmt.Sprintf("Deployment %s is %s: there is nothing left to change", d.ID, d.Status),
				map[string]any{"deployment_id": d.ID, "status": string(d.Status)})
			return store.ErrNoChange
		}
		changed, e := req.apply(d, now)
		if e != nil {
			refused = e
			return store.ErrNoChange
		}
		if !changed {
			return store.ErrNoChange // the same values again: nothing to write
		}
		return nil
	})
	switch {
	case refused != nil:
		httpx.WriteError(w, refused)
	case err != nil && !errors.Is(err, store.ErrNoChange):
		s.internalError(w, r, "update deployment", err)
	default:
		s.writeDeployment(w, d)
	}
}
