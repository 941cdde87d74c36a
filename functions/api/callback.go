package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// InternalSecretHeader carries the per-deployment callback secret.
const InternalSecretHeader = "X-Visgate-Internal-Secret"

func internalUnauthorized() *httpx.Error {
	e := httpx.Unauthorized()
	e.Message = "Missing or invalid " + InternalSecretHeader
	return e
}

type callbackResponse struct {
	DeploymentID     string `json:"deployment_id"`
	Status           string `json:"status"`
	WebhookDelivered bool   `json:"webhook_delivered"`
}

// callback is POST /internal/deployment-ready/{id}: the inference container
// reports progress, readiness or failure. The handler checks and decodes
// the report; what it does to the record is deployment.ApplyReport's rule.
//
// The secret is checked first, against the one derived from the id
// (auth.CallbackSecret): a stranger gets the same 401 for an id that exists
// and one that does not, and costs no store read and no decryption. Failed
// attempts count against the client's address, apart from API keys (its
// further failures get 429 past the limit; a valid secret never does), and
// are logged in aggregate.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	presented := r.Header.Get(InternalSecretHeader)
	if presented == "" || s.SigningKey.Empty() || !auth.CheckCallbackSecret(presented, auth.CallbackSecret(s.SigningKey, id)) {
		if s.authFailed(w, r, failedCallbackSecret) {
			return
		}
		httpx.WriteError(w, internalUnauthorized())
		return
	}
	raw, herr := httpx.DecodeObject(r)
	if herr != nil {
		httpx.WriteError(w, herr)
		return
	}
	f := httpx.NewFields(raw)
	f.Unknown(callbackFields)
	st, stOK := f.String("status", 32)
	reported := deployment.Status(st)
	switch {
	case !f.Given("status"):
		f.Errs.Add("status", "required")
	case !stOK:
	case reported.Reported():
	default:
		f.Errs.Add("status", "must be one of "+statusList(deployment.ReportedStatuses))
	}
	errMsg, _ := f.String("error", 2000)
	msg, _ := f.String("message", 500)
	bytesDone := int64(f.Int("bytes_done", 0, maxBytes, 0))
	bytesTotal := int64(f.Int("bytes_total", 0, maxBytes, 0))
	if (f.Given("bytes_done") || f.Given("bytes_total")) && reported != deployment.StatusDownloadingModel && stOK {
		f.Errs.Add("bytes_done", "only with status downloading_model")
	}
	switch {
	case f.Given("bytes_done") && !f.Given("bytes_total"):
		f.Errs.Add("bytes_total", "required with bytes_done")
	case bytesDone > bytesTotal:
		f.Errs.Add("bytes_done", "must not exceed bytes_total")
	}
	timings := parseTimings(f, "timings")
	if f.Given("timings") && reported != deployment.StatusReady && stOK {
		f.Errs.Add("timings", "only with status ready")
	}
	if e := f.Errs.Err(); e != nil {
		httpx.WriteError(w, e)
		return
	}
	if reported == deployment.StatusDownloadingModel && s.ProgressReports != nil {
		// Before the store read: a worker that reports too often costs
		// nothing more. Status changes are never limited.
		if dec, _ := s.ProgressReports.Allow(ctx, id); !dec.Allowed {
			e := httpx.RateLimited(dec.Limit, dec.RetryAfter)
			e.Message = fmt.Sprintf("Progress reports for one deployment are limited to %d a minute; retry later", dec.Limit)
			httpx.WriteError(w, e)
			return
		}
	}
	d, err := s.Store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		httpx.WriteError(w, httpx.NotFound(shorten(id)))
		return
	}
	if err != nil {
		s.internalError(w, r, "get deployment", err)
		return
	}
	now := s.now()
	// The write outlives the request: a container that drops the
	// connection once its report is sent must not turn an update the store
	// committed into a spurious error (and a report whose log line is lost).
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callbackWriteTimeout)
	defer cancel()
	report := deployment.Report{Status: reported, Error: errMsg, Message: msg, BytesDone: bytesDone, BytesTotal: bytesTotal, Timings: timings}
	d, err = s.Store.Update(wctx, d.ID, func(d *deployment.Deployment) error {
		if effect, err := d.ApplyReport(now, report); err != nil || effect == deployment.ReportIgnored {
			return cmp.Or(err, store.ErrNoChange)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNoChange) {
		s.internalError(w, r, "apply callback", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, callbackResponse{DeploymentID: d.ID, Status: string(d.Status), WebhookDelivered: d.Webhook.Delivered})
}

// callbackWriteTimeout bounds the store write of a report, which does not
// end with the request.
const callbackWriteTimeout = 30 * time.Second

// ProgressReportsPerMinute is how many download progress reports one
// deployment may send a minute (Server.ProgressReports); the worker sends
// one every 3 s. Past it a report gets 429 with Retry-After, before any
// store read.
const ProgressReportsPerMinute = 30

// callbackFields are the fields a container's report may hold.
var callbackFields = map[string]bool{
	"status": true, "error": true, "message": true, "bytes_done": true, "bytes_total": true, "timings": true,
}

// maxBytes bounds a reported download size (1 PiB).
const maxBytes = 1 << 50

// parseTimings parses {"download_seconds", "load_seconds", "warmup_seconds"}
// (each optional, a number of seconds from 0 to a day; no null, no key
// twice), recording what is wrong in f.
func parseTimings(f *httpx.Fields, name string) *deployment.Timings {
	sub, ok := f.Object(name)
	if !ok {
		return nil
	}
	sub.Unknown(map[string]bool{"download_seconds": true, "load_seconds": true, "warmup_seconds": true})
	var t deployment.Timings
	for k, dst := range map[string]*float64{"download_seconds": &t.Download, "load_seconds": &t.Load, "warmup_seconds": &t.Warmup} {
		if sub.Given(k) {
			*dst, _ = sub.Number(k, 0, float64(24*time.Hour/time.Second))
		}
	}
	f.Nested(name, sub)
	return &t
}

// statusList is "a, b, c".
func statusList(sts []deployment.Status) string {
	names := make([]string, len(sts))
	for i, st := range sts {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}
