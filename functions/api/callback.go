package api

import (
	"errors"
	"net/http"

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

var callbackFields = map[string]bool{"status": true, "error": true, "message": true}

type callbackResponse struct {
	DeploymentID     string `json:"deployment_id"`
	Status           string `json:"status"`
	WebhookDelivered bool   `json:"webhook_delivered"`
}

// callback is POST /internal/deployment-ready/{id}: the inference container
// reports progress, readiness or failure. A report for a deployment that is
// past it (ready, failed, deleted) changes nothing.
//
// The secret is checked first, against the one derived from the id
// (auth.CallbackSecret): a stranger gets the same 401 for an id that exists
// and one that does not, and costs no store read and no decryption. Failed
// attempts count against the client's address (429 past the limit) and are
// logged in aggregate.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	addr, throttled := s.authThrottled(w, r)
	if throttled {
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	presented := r.Header.Get(InternalSecretHeader)
	if presented == "" || s.SigningKey.Empty() || !auth.CheckCallbackSecret(presented, auth.CallbackSecret(s.SigningKey, id)) {
		s.authFailed(ctx, addr, "callback secret")
		httpx.WriteError(w, internalUnauthorized())
		return
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
	case reported == deployment.StatusDownloadingModel, reported == deployment.StatusLoadingModel,
		reported == deployment.StatusReady, reported == deployment.StatusFailed:
	default:
		f.Errs.Add("status", "must be one of downloading_model, loading_model, ready, failed")
	}
	errMsg, _ := f.String("error", 2000)
	msg, _ := f.String("message", 500)
	if e := f.Errs.Err(); e != nil {
		httpx.WriteError(w, e)
		return
	}
	now := s.now()
	d, err = s.Store.Update(ctx, d.ID, func(d *deployment.Deployment) error {
		if d.Status == reported && reported == deployment.StatusDownloadingModel && !d.Watch.DownloadReported {
			// The chain enters downloading_model when the endpoint exists;
			// the container's report is still worth a log line, once.
			d.Watch.DownloadReported = true
			d.Log(now, deployment.LevelInfo, "Downloading model")
			return nil
		}
		if !d.Status.CanTransition(reported) || !d.Status.Provisioning() {
			return store.ErrNoChange // late, duplicated or out of order: keep what we know
		}
		if d.RunPodEndpointID == "" && reported != deployment.StatusFailed {
			// The container outran create_endpoint's record of its endpoint:
			// moving on now would announce a ready deployment without its
			// endpoint. Note it; the watch step's polling takes it from here.
			d.Log(now, deployment.LevelInfo, "Inference container reported %s before the endpoint was recorded", reported)
			return nil
		}
		switch reported {
		case deployment.StatusFailed:
			if errMsg == "" {
				errMsg = "no reason given"
			}
			return d.Fail(now, "Inference container reported a failure: "+errMsg)
		case deployment.StatusReady:
			d.Log(now, deployment.LevelInfo, "Inference container reported the model loaded")
		case deployment.StatusDownloadingModel:
			d.Watch.DownloadReported = true
			d.Log(now, deployment.LevelInfo, "Downloading model")
		case deployment.StatusLoadingModel:
			d.Log(now, deployment.LevelInfo, "Loading model into GPU memory")
		}
		if msg != "" {
			d.Log(now, deployment.LevelInfo, "Container: %s", msg)
		}
		return d.Transition(now, reported)
	})
	if err != nil && !errors.Is(err, store.ErrNoChange) {
		s.internalError(w, r, "apply callback", err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, callbackResponse{DeploymentID: d.ID, Status: string(d.Status), WebhookDelivered: d.Webhook.Delivered})
}
