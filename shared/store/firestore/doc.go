package firestore

import (
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// Field names used in queries (see INDEXES.md).
const (
	fieldOwner           = "owner"
	fieldStatus          = "status"
	fieldStatusChangedAt = "status_changed_at"
	fieldCreatedAt       = "created_at"
)

// doc is a deployment as a Firestore document: explicit snake_case names,
// times as timestamps (optional ones null when zero, so that nothing reads
// year 1 as a date), secrets as bytes. Every field of deployment.Deployment
// has a field here; TestDocRoundTrip fails when one is added without it.
type doc struct {
	ID              string     `firestore:"id"`
	Owner           string     `firestore:"owner"`
	Status          string     `firestore:"status"`
	StatusChangedAt time.Time  `firestore:"status_changed_at"`
	Error           string     `firestore:"error"`
	Logs            []docLog   `firestore:"logs"`
	RequestedModel  string     `firestore:"requested_model"`
	Provider        string     `firestore:"provider"`
	GPUTier         string     `firestore:"gpu_tier"`
	Scaling         docScaling `firestore:"scaling"`

	ModelID               string     `firestore:"model_id"`
	Revision              string     `firestore:"revision"`
	PipelineTag           string     `firestore:"pipeline_tag"`
	Family                string     `firestore:"family"`
	ModelVRAMGB           int64      `firestore:"model_vram_gb"`
	DownloadBytes         int64      `firestore:"download_bytes"`
	EstimatedReadySeconds int64      `firestore:"estimated_ready_seconds"`
	GPUPools              []string   `firestore:"gpu_pools"`
	GPUAllocated          string     `firestore:"gpu_allocated"`
	Image                 string     `firestore:"image"`
	RunPodEndpointID      string     `firestore:"runpod_endpoint_id"`
	EndpointURL           string     `firestore:"endpoint_url"`
	EndpointDeleted       bool       `firestore:"endpoint_deleted"`
	EndpointLease         *time.Time `firestore:"endpoint_lease"`
	Watch                 docWatch   `firestore:"watch"`
	Retries               int64      `firestore:"retries"`
	Scaled                bool       `firestore:"scaled"`

	RunPodKey      []byte `firestore:"runpod_key"`
	HFToken        []byte `firestore:"hf_token"`
	CallbackSecret []byte `firestore:"callback_secret"`

	Webhook docWebhook `firestore:"webhook"`

	IdempotencyKey string     `firestore:"idempotency_key"`
	CreatedAt      time.Time  `firestore:"created_at"`
	UpdatedAt      time.Time  `firestore:"updated_at"`
	ReadyAt        *time.Time `firestore:"ready_at"`
	DeletedAt      *time.Time `firestore:"deleted_at"`
	Version        int64      `firestore:"version"`
}

type docLog struct {
	Timestamp time.Time `firestore:"timestamp"`
	Level     string    `firestore:"level"`
	Message   string    `firestore:"message"`
}

type docScaling struct {
	MinWorkers         int64 `firestore:"min_workers"`
	MaxWorkers         int64 `firestore:"max_workers"`
	IdleTimeoutSeconds int64 `firestore:"idle_timeout_seconds"`
}

type docWatch struct {
	StartedAt      *time.Time `firestore:"started_at"`
	Polls          int64      `firestore:"polls"`
	UnhealthyPolls int64      `firestore:"unhealthy_polls"`
	ThrottledSince *time.Time `firestore:"throttled_since"`
	LastSeen       string     `firestore:"last_seen"`
}

type docWebhook struct {
	URL            string     `firestore:"url"`
	Event          string     `firestore:"event"`
	MessageID      string     `firestore:"message_id"`
	Delivered      bool       `firestore:"delivered"`
	Attempts       int64      `firestore:"attempts"`
	LastStatusCode int64      `firestore:"last_status_code"`
	LastError      string     `firestore:"last_error"`
	LastAttemptAt  *time.Time `firestore:"last_attempt_at"`
	DeliveredAt    *time.Time `firestore:"delivered_at"`
	NextAttemptAt  *time.Time `firestore:"next_attempt_at"`
	GaveUp         bool       `firestore:"gave_up"`
}

// ts rounds t to Firestore's precision, the microsecond, in UTC.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// optTS is ts for optional times: nil when zero.
func optTS(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	v := ts(t)
	return &v
}

func fromOptTS(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func bytesOf(s deployment.Sealed) []byte {
	if s == nil {
		return nil
	}
	return append([]byte{}, s...)
}

func sealedOf(b []byte) deployment.Sealed {
	if len(b) == 0 {
		return nil
	}
	return append(deployment.Sealed{}, b...)
}

func toDoc(d *deployment.Deployment) *doc {
	out := &doc{
		ID:              d.ID,
		Owner:           d.Owner,
		Status:          string(d.Status),
		StatusChangedAt: ts(d.StatusChangedAt),
		Error:           d.Error,
		RequestedModel:  d.RequestedModel,
		Provider:        d.Provider,
		GPUTier:         d.GPUTier,
		Scaling: docScaling{
			MinWorkers:         int64(d.Scaling.MinWorkers),
			MaxWorkers:         int64(d.Scaling.MaxWorkers),
			IdleTimeoutSeconds: int64(d.Scaling.IdleTimeoutSeconds),
		},
		ModelID:               d.ModelID,
		Revision:              d.Revision,
		PipelineTag:           d.PipelineTag,
		Family:                d.Family,
		ModelVRAMGB:           int64(d.ModelVRAMGB),
		DownloadBytes:         d.DownloadBytes,
		EstimatedReadySeconds: int64(d.EstimatedReadySeconds),
		GPUPools:              append([]string(nil), d.GPUPools...),
		GPUAllocated:          d.GPUAllocated,
		Image:                 d.Image,
		RunPodEndpointID:      d.RunPodEndpointID,
		EndpointURL:           d.EndpointURL,
		EndpointDeleted:       d.EndpointDeleted,
		EndpointLease:         optTS(d.EndpointLease),
		Watch: docWatch{
			StartedAt:      optTS(d.Watch.StartedAt),
			Polls:          int64(d.Watch.Polls),
			UnhealthyPolls: int64(d.Watch.UnhealthyPolls),
			ThrottledSince: optTS(d.Watch.ThrottledSince),
			LastSeen:       d.Watch.LastSeen,
		},
		Retries:        int64(d.Retries),
		Scaled:         d.Scaled,
		RunPodKey:      bytesOf(d.RunPodKey),
		HFToken:        bytesOf(d.HFToken),
		CallbackSecret: bytesOf(d.CallbackSecret),
		Webhook: docWebhook{
			URL:            d.Webhook.URL,
			Event:          d.Webhook.Event,
			MessageID:      d.Webhook.MessageID,
			Delivered:      d.Webhook.Delivered,
			Attempts:       int64(d.Webhook.Attempts),
			LastStatusCode: int64(d.Webhook.LastStatusCode),
			LastError:      d.Webhook.LastError,
			LastAttemptAt:  optTS(d.Webhook.LastAttemptAt),
			DeliveredAt:    optTS(d.Webhook.DeliveredAt),
			NextAttemptAt:  optTS(d.Webhook.NextAttemptAt),
			GaveUp:         d.Webhook.GaveUp,
		},
		IdempotencyKey: d.IdempotencyKey,
		CreatedAt:      ts(d.CreatedAt),
		UpdatedAt:      ts(d.UpdatedAt),
		ReadyAt:        optTS(d.ReadyAt),
		DeletedAt:      optTS(d.DeletedAt),
		Version:        d.Version,
	}
	for _, l := range d.Logs {
		out.Logs = append(out.Logs, docLog{Timestamp: ts(l.Timestamp), Level: string(l.Level), Message: l.Message})
	}
	return out
}

// fromDoc returns a new deployment sharing no memory with in.
func fromDoc(in *doc) *deployment.Deployment {
	d := &deployment.Deployment{
		ID:              in.ID,
		Owner:           in.Owner,
		Status:          deployment.Status(in.Status),
		StatusChangedAt: in.StatusChangedAt.UTC(),
		Error:           in.Error,
		RequestedModel:  in.RequestedModel,
		Provider:        in.Provider,
		GPUTier:         in.GPUTier,
		Scaling: deployment.Scaling{
			MinWorkers:         int(in.Scaling.MinWorkers),
			MaxWorkers:         int(in.Scaling.MaxWorkers),
			IdleTimeoutSeconds: int(in.Scaling.IdleTimeoutSeconds),
		},
		ModelID:               in.ModelID,
		Revision:              in.Revision,
		PipelineTag:           in.PipelineTag,
		Family:                in.Family,
		ModelVRAMGB:           int(in.ModelVRAMGB),
		DownloadBytes:         in.DownloadBytes,
		EstimatedReadySeconds: int(in.EstimatedReadySeconds),
		GPUPools:              append([]string(nil), in.GPUPools...),
		GPUAllocated:          in.GPUAllocated,
		Image:                 in.Image,
		RunPodEndpointID:      in.RunPodEndpointID,
		EndpointURL:           in.EndpointURL,
		EndpointDeleted:       in.EndpointDeleted,
		EndpointLease:         fromOptTS(in.EndpointLease),
		Watch: deployment.Watch{
			StartedAt:      fromOptTS(in.Watch.StartedAt),
			Polls:          int(in.Watch.Polls),
			UnhealthyPolls: int(in.Watch.UnhealthyPolls),
			ThrottledSince: fromOptTS(in.Watch.ThrottledSince),
			LastSeen:       in.Watch.LastSeen,
		},
		Retries:        int(in.Retries),
		Scaled:         in.Scaled,
		RunPodKey:      sealedOf(in.RunPodKey),
		HFToken:        sealedOf(in.HFToken),
		CallbackSecret: sealedOf(in.CallbackSecret),
		Webhook: deployment.Webhook{
			URL:            in.Webhook.URL,
			Event:          in.Webhook.Event,
			MessageID:      in.Webhook.MessageID,
			Delivered:      in.Webhook.Delivered,
			Attempts:       int(in.Webhook.Attempts),
			LastStatusCode: int(in.Webhook.LastStatusCode),
			LastError:      in.Webhook.LastError,
			LastAttemptAt:  fromOptTS(in.Webhook.LastAttemptAt),
			DeliveredAt:    fromOptTS(in.Webhook.DeliveredAt),
			NextAttemptAt:  fromOptTS(in.Webhook.NextAttemptAt),
			GaveUp:         in.Webhook.GaveUp,
		},
		IdempotencyKey: in.IdempotencyKey,
		CreatedAt:      in.CreatedAt.UTC(),
		UpdatedAt:      in.UpdatedAt.UTC(),
		ReadyAt:        fromOptTS(in.ReadyAt),
		DeletedAt:      fromOptTS(in.DeletedAt),
		Version:        in.Version,
	}
	for _, l := range in.Logs {
		d.Logs = append(d.Logs, deployment.LogEntry{Timestamp: l.Timestamp.UTC(), Level: deployment.Level(l.Level), Message: l.Message})
	}
	return d
}

// idemDoc is an idempotency claim as a Firestore document. A TTL policy on
// expires_at may delete expired claims (see INDEXES.md); the store never
// relies on it.
type idemDoc struct {
	Owner        string    `firestore:"owner"`
	Key          string    `firestore:"key"`
	RequestHash  string    `firestore:"request_hash"`
	DeploymentID string    `firestore:"deployment_id"`
	CreatedAt    time.Time `firestore:"created_at"`
	ExpiresAt    time.Time `firestore:"expires_at"`
}

func toIdemDoc(r store.Idempotency) *idemDoc {
	return &idemDoc{
		Owner: r.Owner, Key: r.Key, RequestHash: r.RequestHash, DeploymentID: r.DeploymentID,
		CreatedAt: ts(r.CreatedAt), ExpiresAt: ts(r.ExpiresAt),
	}
}

func fromIdemDoc(d *idemDoc) *store.Idempotency {
	return &store.Idempotency{
		Owner: d.Owner, Key: d.Key, RequestHash: d.RequestHash, DeploymentID: d.DeploymentID,
		CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC(),
	}
}
