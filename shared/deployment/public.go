package deployment

import "time"

// Public is the deployment as its owner sees it (GET, list, webhook payloads):
// no secrets, no internal bookkeeping. Nullable fields are pointers.
type Public struct {
	DeploymentID          string          `json:"deployment_id"`
	Status                Status          `json:"status"`
	ModelID               string          `json:"model_id"`
	Task                  *string         `json:"task"` // the Hub's pipeline_tag, once validated
	RequestedModel        string          `json:"requested_model"`
	Provider              *string         `json:"provider"`
	GPUTier               *string         `json:"gpu_tier"`
	RunPodEndpointID      *string         `json:"runpod_endpoint_id"`
	EndpointURL           *string         `json:"endpoint_url"`
	GPUAllocated          *string         `json:"gpu_allocated"`
	ModelVRAMGB           *int            `json:"model_vram_gb"`
	EstimatedReadySeconds int             `json:"estimated_ready_seconds"`
	WebhookURL            *string         `json:"webhook_url"` // nil: no webhook configured
	Webhook               PublicWebhook   `json:"webhook"`
	Scaling               Scaling         `json:"scaling"`
	Progress              *PublicProgress `json:"progress"`
	Limits                PublicLimits    `json:"limits"`
	Price                 *PublicPrice    `json:"price"`
	Spend                 *PublicSpend    `json:"spend"`
	DeletedReason         *string         `json:"deleted_reason"`
	Logs                  []LogEntry      `json:"logs,omitempty"`
	Error                 *string         `json:"error"`
	CreatedAt             time.Time       `json:"created_at"`
	UpdatedAt             time.Time       `json:"updated_at"`
	ReadyAt               *time.Time      `json:"ready_at"`
}

// PublicProgress is the inference container's last report: the phase and
// the download's bytes (null until the container reports).
type PublicProgress struct {
	Phase      Status `json:"phase"`
	BytesDone  int64  `json:"bytes_done"`
	BytesTotal int64  `json:"bytes_total"`
}

// PublicWebhook is the delivery state shown to the owner.
type PublicWebhook struct {
	Delivered      bool       `json:"delivered"`
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"last_status_code"`
	LastError      *string    `json:"last_error"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	DeliveredAt    *time.Time `json:"delivered_at"`
}

// Public returns the owner's view now; logs only when withLogs.
func (d *Deployment) Public(withLogs bool) Public { return d.PublicAt(time.Now(), withLogs) }

// PublicAt returns the owner's view at now (the time an estimated spend is
// made up to); logs only when withLogs.
func (d *Deployment) PublicAt(now time.Time, withLogs bool) Public {
	p := Public{
		DeploymentID:          d.ID,
		Status:                d.Status,
		ModelID:               d.ModelID,
		Task:                  str(d.PipelineTag),
		RequestedModel:        d.RequestedModel,
		Provider:              str(d.Provider),
		GPUTier:               str(d.GPUTier),
		RunPodEndpointID:      str(d.RunPodEndpointID),
		EndpointURL:           str(d.liveEndpointURL()),
		GPUAllocated:          str(d.GPUAllocated),
		EstimatedReadySeconds: d.EstimatedReadySeconds,
		WebhookURL:            str(d.Webhook.URL),
		Webhook: PublicWebhook{
			Delivered:     d.Webhook.Delivered,
			Attempts:      d.Webhook.Attempts,
			LastError:     str(d.Webhook.LastError),
			LastAttemptAt: tm(d.Webhook.LastAttemptAt),
			DeliveredAt:   tm(d.Webhook.DeliveredAt),
		},
		Scaling:       d.Scaling,
		Limits:        d.publicLimits(),
		Price:         PublicPriceOf(d.Price, d.Scaling),
		Spend:         d.publicSpend(now),
		DeletedReason: str(d.DeletedReason),
		Error:         str(d.Error),
		CreatedAt:     d.CreatedAt.UTC(),
		UpdatedAt:     d.UpdatedAt.UTC(),
		ReadyAt:       tm(d.ReadyAt),
	}
	if d.ModelVRAMGB > 0 {
		v := d.ModelVRAMGB
		p.ModelVRAMGB = &v
	}
	if d.Progress.Phase != "" {
		p.Progress = &PublicProgress{Phase: d.Progress.Phase, BytesDone: d.Progress.BytesDone, BytesTotal: d.Progress.BytesTotal}
	}
	if d.Webhook.LastStatusCode != 0 {
		c := d.Webhook.LastStatusCode
		p.Webhook.LastStatusCode = &c
	}
	if withLogs {
		p.Logs = append([]LogEntry{}, d.Logs...)
	}
	return p
}

// liveEndpointURL is the endpoint's URL while the endpoint exists: a failed
// or deleted deployment's endpoint is torn down (or about to be), so its URL
// would only send the owner's traffic to nothing.
func (d *Deployment) liveEndpointURL() string {
	if d.EndpointDeleted || d.Status == StatusFailed || d.Status == StatusDeleted {
		return ""
	}
	return d.EndpointURL
}

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func tm(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
