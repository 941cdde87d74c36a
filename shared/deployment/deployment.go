package deployment

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// Level is the severity of a log entry.
type Level string

// Log levels.
const (
	LevelInfo  Level = "INFO"
	LevelWarn  Level = "WARNING"
	LevelError Level = "ERROR"
)

// LogEntry is one line of a deployment's user-visible log.
type LogEntry struct {
	Timestamp time.Time `json:"timestamp"`
	Level     Level     `json:"level"`
	Message   string    `json:"message"`
}

// MaxLogs bounds the log kept per deployment; older lines are dropped first
// (the first line, the creation, is always kept).
const MaxLogs = 200

// Sealed is a secret encrypted at rest (ciphertext, never the plain value).
type Sealed []byte

// Scaling is how the endpoint scales once the model is ready.
type Scaling struct {
	MinWorkers         int `json:"min_workers"`
	MaxWorkers         int `json:"max_workers"`
	IdleTimeoutSeconds int `json:"idle_timeout_seconds"`
}

// Webhook is the delivery state of the user's webhook.
type Webhook struct {
	URL            string    `json:"url"`
	Event          string    `json:"event,omitempty"`      // deployment.ready or deployment.failed
	MessageID      string    `json:"message_id,omitempty"` // stable across retries
	Delivered      bool      `json:"delivered"`
	Attempts       int       `json:"attempts"`
	LastStatusCode int       `json:"last_status_code,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	LastAttemptAt  time.Time `json:"last_attempt_at,omitzero"`
	DeliveredAt    time.Time `json:"delivered_at,omitzero"`
	NextAttemptAt  time.Time `json:"next_attempt_at,omitzero"`
	GaveUp         bool      `json:"gave_up,omitempty"`
	// SeqBase is where the task numbers of this event start (with
	// Attempts it names the webhook task): past every number an earlier
	// event's tasks may have taken (a ready event before a limit deleted
	// the deployment), so a later event's tasks never take their names.
	SeqBase int `json:"seq_base,omitempty"`
}

// Watch is what polling has seen of the endpoint's workers.
type Watch struct {
	StartedAt      time.Time `json:"started_at,omitzero"` // when the endpoint was recorded
	Polls          int       `json:"polls"`
	UnhealthyPolls int       `json:"unhealthy_polls"` // consecutive polls with unhealthy workers
	ThrottledSince time.Time `json:"throttled_since,omitzero"`
	LastSeen       string    `json:"last_seen,omitempty"` // summary of the last poll, e.g. "1 initializing"
	// DownloadReported is set once the container said it is downloading.
	DownloadReported bool `json:"download_reported,omitempty"`
	// WorkerUp is set once a worker was seen idle or running.
	WorkerUp bool `json:"worker_up,omitempty"`
	// HealthAskedAt is when the watch last asked the inference worker
	// whether its model is ready (a health check job).
	HealthAskedAt time.Time `json:"health_asked_at,omitzero"`
}

// Progress is the inference container's last report: its phase
// (downloading_model, loading_model, ready) and the download's bytes.
type Progress struct {
	Phase      Status    `json:"phase,omitempty"`
	BytesDone  int64     `json:"bytes_done"`
	BytesTotal int64     `json:"bytes_total"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
	// Timings of the worker's start, reported with ready (seconds).
	DownloadSeconds float64 `json:"download_seconds,omitempty"`
	LoadSeconds     float64 `json:"load_seconds,omitempty"`
	WarmupSeconds   float64 `json:"warmup_seconds,omitempty"`
}

// Deployment is the record of one model deployment. Secrets are held only
// sealed (see Sealed); the record is safe to store as it is.
//
// It reads as parts: its identity and status; what the owner asked for
// (Request); what validation learnt of the model (Model); where it runs
// (Placement); the RunPod endpoint (Endpoint) and the lease of the run that
// creates it (Lease); what the watch saw and the worker reported (Watch,
// Progress); the runs of the steps (Runs); the owner's limits and the
// spend; the sealed secrets; the webhook; and the bookkeeping times. The
// parts are embedded without a JSON name, so their fields are the record's
// own in JSON and in Firestore (the stored and served form is the same as
// when they were one flat list: testdata/deployment.json), and code reads
// them as d.ModelID, d.RunPodEndpointID.
type Deployment struct {
	ID    string `json:"id"`
	Owner string `json:"owner"` // the API key's owner id
	// Status and its history.
	Status          Status     `json:"status"`
	StatusChangedAt time.Time  `json:"status_changed_at"`
	Error           string     `json:"error,omitempty"`
	Logs            []LogEntry `json:"logs"`

	Request
	Model
	Placement
	Endpoint
	Lease
	// Watch is what the watch step has seen of the endpoint's workers.
	Watch Watch `json:"watch"`
	// Progress is what the inference container last reported.
	Progress Progress `json:"progress,omitzero"`
	Runs

	// Limits are the owner's spend and time limits; Spend what the
	// endpoint cost so far; Price the chosen pool's price.
	Limits Limits `json:"limits"`
	Spend  Spend  `json:"spend"`
	Price  *Price `json:"price,omitempty"`
	// DeletedReason says why a deleted deployment was deleted (Reason*).
	DeletedReason string `json:"deleted_reason,omitempty"`

	// Secrets, sealed with the deployment id as associated data.
	RunPodKey Sealed `json:"runpod_key"`
	HFToken   Sealed `json:"hf_token,omitempty"`
	// The callback secret is not stored: auth.CallbackSecret derives it.

	Webhook Webhook `json:"webhook"`

	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	ReadyAt        time.Time `json:"ready_at,omitzero"`
	DeletedAt      time.Time `json:"deleted_at,omitzero"`
	// Version increases by one on every write; stores use it for compare-and-set.
	Version int64 `json:"version"`
}

// Request is what the owner asked for (POST, and PATCH of the scaling).
type Request struct {
	RequestedModel string  `json:"requested_model"` // hf_model_id, or model_name as given
	Provider       string  `json:"provider,omitempty"`
	GPUTier        string  `json:"gpu_tier,omitempty"` // as requested; empty for automatic
	Scaling        Scaling `json:"scaling"`
}

// Model is what the validate step learnt of the model, and how it is
// served.
type Model struct {
	ModelID     string `json:"model_id"` // resolved, canonical Hugging Face id
	Revision    string `json:"revision,omitempty"`
	PipelineTag string `json:"pipeline_tag,omitempty"`
	LibraryName string `json:"library_name,omitempty"`
	Family      string `json:"family,omitempty"`
	// Worker serves the model: "vllm" or "inference" (serving.Worker).
	Worker string `json:"worker,omitempty"`
	// Task is the inference worker's task (the Hub's pipeline tag).
	Task string `json:"task,omitempty"`
	// Files are what the worker downloads (the estimate's selection).
	Files                 []string `json:"files,omitempty"`
	ModelVRAMGB           int      `json:"model_vram_gb,omitempty"`
	DownloadBytes         int64    `json:"download_bytes,omitempty"`
	EstimatedReadySeconds int      `json:"estimated_ready_seconds"`
}

// Placement is where the select_gpu step chose to run the model.
type Placement struct {
	GPUPools []string `json:"gpu_pools,omitempty"` // chosen pools, preferred first
	// GPUExcludedTypes narrows the pools to the card the user named.
	GPUExcludedTypes []string `json:"gpu_excluded_types,omitempty"`
	GPUAllocated     string   `json:"gpu_allocated,omitempty"`
}

// Endpoint is the RunPod endpoint made for the deployment.
type Endpoint struct {
	Image            string `json:"image,omitempty"`
	RunPodEndpointID string `json:"runpod_endpoint_id,omitempty"`
	EndpointURL      string `json:"endpoint_url,omitempty"`
	EndpointDeleted  bool   `json:"endpoint_deleted,omitempty"`
	// EndpointChanges counts the times the record learnt of an endpoint a
	// teardown that already ran may have missed (see EndpointLearnt); it
	// names the teardown task.
	EndpointChanges int `json:"endpoint_changes,omitempty"`
}

// Lease is the create_endpoint run's hold on making the endpoint.
type Lease struct {
	// EndpointLease is held by the create_endpoint run that may be creating
	// the RunPod endpoint right now; other runs wait until it expires.
	EndpointLease time.Time `json:"endpoint_lease,omitzero"`
	// EndpointLeaseHolder names the run (process) that took EndpointLease.
	EndpointLeaseHolder string `json:"endpoint_lease_holder,omitempty"`
	// CreateUncertainUntil is set when a create got no answer (a timeout, a
	// dropped connection, a 5xx): until then RunPod may still make the
	// endpoint it asked for, so no second create is made and a teardown
	// looks again.
	CreateUncertainUntil time.Time `json:"create_uncertain_until,omitzero"`
}

// Runs is how the steps' runs stand.
type Runs struct {
	// Retries counts transient failures of the current step (reset when the
	// status changes).
	Retries int `json:"retries,omitempty"`
	// Scaled is set once the endpoint was scaled to the user's settings
	// after ready.
	Scaled bool `json:"scaled,omitempty"`
	// ScalingChanges counts the owner's changes of Scaling (PATCH): it
	// names the scale task, so a change gets a run of its own.
	ScalingChanges int `json:"scaling_changes,omitempty"`
}

// Clone returns a deep copy.
func (d *Deployment) Clone() *Deployment {
	c := *d
	c.Logs = append([]LogEntry(nil), d.Logs...)
	c.GPUPools = append([]string(nil), d.GPUPools...)
	c.Files = append([]string(nil), d.Files...)
	c.GPUExcludedTypes = append([]string(nil), d.GPUExcludedTypes...)
	c.RunPodKey = append(Sealed(nil), d.RunPodKey...)
	c.HFToken = append(Sealed(nil), d.HFToken...)
	if d.Price != nil {
		p := *d.Price
		c.Price = &p
	}
	return &c
}

// Log appends a log line.
func (d *Deployment) Log(now time.Time, level Level, format string, args ...any) {
	d.Logs = append(d.Logs, LogEntry{Timestamp: now.UTC(), Level: level, Message: fmt.Sprintf(format, args...)})
	if n := len(d.Logs); n > MaxLogs {
		d.Logs = append(d.Logs[:1], d.Logs[n-MaxLogs+1:]...)
	}
}

// Transition moves the deployment to next, or returns a *TransitionError and
// changes nothing when the move is not allowed.
func (d *Deployment) Transition(now time.Time, next Status) error {
	if !d.Status.CanTransition(next) {
		return &TransitionError{From: d.Status, To: next}
	}
	d.Status = next
	d.StatusChangedAt = now.UTC()
	d.Retries = 0
	switch next {
	case StatusReady:
		d.ReadyAt = now.UTC()
	case StatusDeleted:
		d.DeletedAt = now.UTC()
	}
	return nil
}

// Fail moves a provisioning deployment to failed with a message for the user.
func (d *Deployment) Fail(now time.Time, msg string) error {
	if err := d.Transition(now, StatusFailed); err != nil {
		return err
	}
	d.Error = msg
	d.Log(now, LevelError, "Deployment failed: %s", msg)
	return nil
}

var idPattern = regexp.MustCompile(`^dep_[0-9]{4}_[0-9a-f]{8}$`)

// NewID returns a fresh random id, dep_<year>_<8 hex>. Ids are random, so a
// store must create them only if absent and the caller retry on collision.
func NewID(now time.Time) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("deployment: crypto/rand: %v", err)) // never fails on supported platforms
	}
	return fmt.Sprintf("dep_%04d_%s", now.UTC().Year(), hex.EncodeToString(b[:]))
}

// ValidID reports whether id has the shape of a deployment id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// EndpointMarker is the env variable every RunPod endpoint the orchestrator
// makes carries, set to its deployment's id: how a teardown finds what an
// interrupted run made, and the reconciler the endpoints no deployment owns.
const EndpointMarker = "VISGATE_DEPLOYMENT_ID"

// Sealed fields, named in their associated data.
const (
	FieldRunPodKey = "user_runpod_key"
	FieldHFToken   = "hf_token"
)

// AssociatedData binds a sealed secret to its deployment and field, so a
// ciphertext copied to another deployment or field does not open.
func AssociatedData(id, field string) string { return "deployments/" + id + "/" + field }
