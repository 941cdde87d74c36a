package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/visgate/deployment-orchestrator/shared/catalog"
	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/huggingface"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

// Defaults and limits of the create request.
const (
	DefaultEstimatedReadySeconds = 180
	DefaultMaxWorkers            = 1
	DefaultIdleTimeoutSeconds    = 60
	MaxMinWorkers                = 10
	MaxMaxWorkers                = 100
	MinIdleTimeoutSeconds        = 5
	MaxIdleTimeoutSeconds        = 3600
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	IdempotencyTTL = 24 * time.Hour
	// idempotencyInFlight is how long a claim whose deployment does not
	// exist yet counts as in flight (after that, as abandoned).
	idempotencyInFlight = time.Minute
)

var createFields = map[string]bool{
	"hf_model_id": true, "model_name": true, "provider": true, "user_runpod_key": true,
	"user_webhook_url": true, "gpu_tier": true, "hf_token": true,
	"min_workers": true, "max_workers": true, "idle_timeout_seconds": true,
	"max_spend_usd": true, "ttl_seconds": true, "expires_at": true,
}

// createRequest is a validated POST /v1/deployments body.
type createRequest struct {
	modelID        string // resolved Hugging Face id
	requestedModel string
	provider       string
	runpodKey      secret.Secret
	hfToken        secret.Secret
	webhookURL     string
	gpuTier        string
	scaling        deployment.Scaling
	limits         deployment.Limits
	price          *deployment.Price // of the requested tier's pool
}

func (s *Server) parseCreate(ctx context.Context, raw map[string]json.RawMessage) (*createRequest, *httpx.Error) {
	f := httpx.NewFields(raw)
	f.Unknown(createFields)
	req := &createRequest{}
	hfID, hasHF := f.String("hf_model_id", 200)
	name, hasName := f.String("model_name", 100)
	provider, hasProvider := f.String("provider", 50)
	hfGiven, nameGiven := f.Given("hf_model_id"), f.Given("model_name")
	switch {
	case hfGiven && nameGiven:
		f.Errs.Add("hf_model_id", "give either hf_model_id or model_name, not both")
		f.Errs.Add("model_name", "give either hf_model_id or model_name, not both")
	case !hfGiven && !nameGiven:
		f.Errs.Add("hf_model_id", "required: give hf_model_id, or model_name with an optional provider")
	case hasHF:
		if hasProvider {
			f.Errs.Add("provider", "only used with model_name")
		}
		if !huggingface.ValidID(hfID) {
			f.Errs.Add("hf_model_id", "must be a Hugging Face model id such as black-forest-labs/FLUX.1-schnell")
		} else {
			req.modelID, req.requestedModel = hfID, hfID
		}
	case hasName:
		id, err := s.Models.Resolve(provider, name)
		if err != nil {
			field := "model_name"
			if errors.Is(err, catalog.ErrUnknownProvider) {
				field = "provider"
			}
			f.Errs.Add(field, err.Error())
		} else {
			req.modelID, req.requestedModel, req.provider = id, name, strings.ToLower(provider)
		}
	}
	if key, ok := f.String("user_runpod_key", 256); ok {
		if strings.ContainsFunc(key, unicode.IsSpace) {
			f.Errs.Add("user_runpod_key", "must not contain spaces")
		}
		req.runpodKey = secret.New(key)
	} else if !f.Given("user_runpod_key") {
		f.Errs.Add("user_runpod_key", "required")
	}
	if tok, ok := f.String("hf_token", 256); ok {
		if strings.ContainsFunc(tok, unicode.IsSpace) {
			f.Errs.Add("hf_token", "must not contain spaces")
		}
		req.hfToken = secret.New(tok)
	}
	if u, ok := f.String("user_webhook_url", 2048); ok {
		if s.PrivateWebhooksOnly {
			if err := webhook.ValidatePrivateURL(u); err != nil {
				f.Errs.Add("user_webhook_url", err.Error()+"; this server sends webhooks only to this machine and private networks (as with SIMULATE=1; WEBHOOK_ALLOW_PUBLIC=1 lifts this)")
			}
		} else if err := webhook.ValidateURL(u, s.AllowPrivateWebhooks); err != nil {
			f.Errs.Add("user_webhook_url", err.Error())
		}
		req.webhookURL = u
	}
	// No user_webhook_url: no webhook is sent (a client that polls needs none).
	tier, hasTier := f.String("gpu_tier", 64)
	req.scaling.MinWorkers = f.Int("min_workers", 0, MaxMinWorkers, 0)
	req.scaling.MaxWorkers = f.Int("max_workers", 1, MaxMaxWorkers, max(DefaultMaxWorkers, req.scaling.MinWorkers))
	req.scaling.IdleTimeoutSeconds = f.Int("idle_timeout_seconds", MinIdleTimeoutSeconds, MaxIdleTimeoutSeconds, DefaultIdleTimeoutSeconds)
	if req.scaling.MaxWorkers < req.scaling.MinWorkers {
		f.Errs.Add("max_workers", "must be at least min_workers")
	}
	now := s.now()
	lim := parseLimits(f, now)
	if lim.maxSpend != nil {
		req.limits.MaxSpendUSD = *lim.maxSpend
	}
	switch {
	case lim.expiresAt != nil:
		req.limits.ExpiresAt = *lim.expiresAt
	case s.DefaultTTL > 0 && !f.Given("ttl_seconds") && !f.Given("expires_at"):
		req.limits.ExpiresAt, req.limits.ExpiryDefaulted = now.Add(s.DefaultTTL).UTC(), true
	}
	if hasTier {
		// The tier must mean something in the catalogue select_gpu will
		// choose from: the account's own. Only a request valid otherwise
		// costs a read of it.
		cat := s.GPUs
		if len(f.Errs) == 0 && s.LiveGPUs != nil {
			cat = s.LiveGPUs.Get(ctx, req.runpodKey)
		}
		if pool, _, err := cat.ParseTier(tier); err != nil {
			f.Errs.Add("gpu_tier", err.Error())
		} else {
			// The pool is known: so is its price, from the same catalogue.
			req.price = deployment.NewPrice(pool.ID, pool.PricePerHour, 0, cat.ReadAt())
		}
		req.gpuTier = tier
	}
	if e := f.Errs.Err(); e != nil {
		return nil, e
	}
	return req, nil
}

type createResponse struct {
	DeploymentID          string                  `json:"deployment_id"`
	Status                string                  `json:"status"`
	ModelID               string                  `json:"model_id"`
	EstimatedReadySeconds int                     `json:"estimated_ready_seconds"`
	WebhookURL            *string                 `json:"webhook_url"`
	CreatedAt             time.Time               `json:"created_at"`
	Limits                deployment.PublicLimits `json:"limits"`
	Price                 *deployment.PublicPrice `json:"price"`
}

func (s *Server) accepted(w http.ResponseWriter, d *deployment.Deployment) {
	w.Header().Set("Location", "/v1/deployments/"+d.ID)
	p := d.Public(false)
	httpx.WriteJSON(w, http.StatusAccepted, createResponse{
		DeploymentID: d.ID, Status: string(d.Status), ModelID: d.ModelID,
		EstimatedReadySeconds: d.EstimatedReadySeconds, WebhookURL: p.WebhookURL, CreatedAt: d.CreatedAt.UTC(),
		Limits: p.Limits, Price: p.Price,
	})
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, owner string) {
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
	req, herr := s.parseCreate(r.Context(), raw)
	if herr != nil {
		httpx.WriteError(w, herr)
		return
	}
	idemKey := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if _, present := r.Header["Idempotency-Key"]; present {
		if idemKey == "" || len(idemKey) > 255 || strings.ContainsFunc(idemKey, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
			httpx.WriteError(w, httpx.FieldErrors{"Idempotency-Key": "must be 1 to 255 printable ASCII characters"}.Err())
			return
		}
	}
	ctx := r.Context()
	if idemKey == "" {
		d, err := s.createDeployment(ctx, owner, req, "", "")
		if err != nil {
			s.internalError(w, r, "create deployment", err)
			return
		}
		s.accepted(w, d)
		return
	}
	sum := sha256.Sum256(body)
	d, err := s.createIdempotent(ctx, owner, idemKey, hex.EncodeToString(sum[:]), req)
	var refused *httpx.Error
	switch {
	case errors.As(err, &refused):
		httpx.WriteError(w, refused)
	case err != nil:
		s.internalError(w, r, "create deployment", err)
	default:
		s.accepted(w, d)
	}
}

// createIdempotent honours Idempotency-Key: the same key and body return the
// same deployment; another body is a 422 and a first request still in
// flight a 409, both returned as an *httpx.Error; any other error is the
// service's.
func (s *Server) createIdempotent(ctx context.Context, owner, key, hash string, req *createRequest) (*deployment.Deployment, error) {
	for range 3 {
		now := s.now()
		id := deployment.NewID(now)
		existing, err := s.Store.ClaimIdempotency(ctx, store.Idempotency{
			Owner: owner, Key: key, RequestHash: hash, DeploymentID: id, CreatedAt: now, ExpiresAt: now.Add(IdempotencyTTL),
		})
		if err != nil {
			return nil, fmt.Errorf("claim idempotency key: %w", err)
		}
		if existing == nil {
			d, err := s.createDeployment(ctx, owner, req, id, key)
			if err != nil {
				if rerr := s.Store.ReleaseIdempotency(ctx, owner, key); rerr != nil {
					s.logger().ErrorContext(ctx, "release idempotency key", "error", rerr.Error())
				}
				return nil, err
			}
			return d, nil
		}
		if existing.RequestHash != hash {
			return nil, httpx.FieldErrors{"Idempotency-Key": "was already used with a different request body"}.Err()
		}
		d, err := s.Store.Get(ctx, existing.DeploymentID)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("get deployment of idempotency key: %w", err)
		}
		if now.Sub(existing.CreatedAt) < idempotencyInFlight {
			return nil, httpx.Conflict("A request with this Idempotency-Key is still being processed; retry shortly",
				map[string]any{"idempotency_key": key})
		}
		// Abandoned by a request that died between claim and create.
		if err := s.Store.ReleaseIdempotency(ctx, owner, key); err != nil {
			return nil, fmt.Errorf("release abandoned idempotency key: %w", err)
		}
	}
	return nil, errors.New("idempotency key: claim kept changing")
}

// createDeployment stores a new deployment (id fixed when given, else fresh
// ids until one is free). The change feed enqueues the validate step it owes.
func (s *Server) createDeployment(ctx context.Context, owner string, req *createRequest, id, idemKey string) (*deployment.Deployment, error) {
	fixed := id != ""
	for attempt := 0; ; attempt++ {
		now := s.now()
		if !fixed {
			id = deployment.NewID(now)
		}
		d, err := s.newDeployment(ctx, owner, req, id, idemKey, now)
		if err != nil {
			return nil, err
		}
		err = s.Store.Create(ctx, d)
		if err == nil {
			// The new record owes validate: the change feed enqueues it.
			return d, nil
		}
		if !errors.Is(err, store.ErrExists) || fixed || attempt >= 5 {
			return nil, fmt.Errorf("store deployment: %w", err)
		}
	}
}

func (s *Server) newDeployment(ctx context.Context, owner string, req *createRequest, id, idemKey string, now time.Time) (*deployment.Deployment, error) {
	runpodKey, err := s.Sealer.Seal(ctx, req.runpodKey, deployment.AssociatedData(id, deployment.FieldRunPodKey))
	if err != nil {
		return nil, fmt.Errorf("seal runpod key: %w", err)
	}
	var hfToken []byte
	if !req.hfToken.Empty() {
		if hfToken, err = s.Sealer.Seal(ctx, req.hfToken, deployment.AssociatedData(id, deployment.FieldHFToken)); err != nil {
			return nil, fmt.Errorf("seal hf token: %w", err)
		}
	}
	d := &deployment.Deployment{
		ID: id, Owner: owner,
		Status: deployment.StatusValidating, StatusChangedAt: now,
		Request:   deployment.Request{RequestedModel: req.requestedModel, Provider: req.provider, GPUTier: req.gpuTier, Scaling: req.scaling},
		Model:     deployment.Model{ModelID: req.modelID, EstimatedReadySeconds: DefaultEstimatedReadySeconds},
		Limits:    req.limits,
		Price:     req.price,
		RunPodKey: runpodKey, HFToken: hfToken,
		Webhook:        deployment.Webhook{URL: req.webhookURL},
		IdempotencyKey: idemKey,
		CreatedAt:      now, UpdatedAt: now,
	}
	if req.requestedModel != req.modelID {
		d.Log(now, deployment.LevelInfo, "Resolved model_name %s to %s", strings.TrimPrefix(req.provider+"/"+req.requestedModel, "/"), req.modelID)
	}
	d.Log(now, deployment.LevelInfo, "Validating Hugging Face model")
	return d, nil
}
