// Package cloudtasks is the Google Cloud queue: Enqueue creates a Cloud Tasks
// HTTP task that POSTs the task to the ProvisionTask function, and Handler is
// that function's receiving side.
//
// Deduplication is Cloud Tasks' own: every task is created under its
// deterministic name, and a name stays taken for a while (about an hour, up
// to days) after the task completed or was deleted. Retries and backoff are
// the queue's RetryConfig (terraform sets it; tests create their own queues).
package cloudtasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/queue"
)

// Bounds that Cloud Tasks puts on HTTP tasks.
const (
	// MaxTaskIDLength is the longest task id Cloud Tasks accepts.
	MaxTaskIDLength = 500
	// MinDispatchDeadline and MaxDispatchDeadline bound Config.DispatchDeadline
	// (zero leaves Cloud Tasks' default of 10 minutes).
	MinDispatchDeadline = 15 * time.Second
	MaxDispatchDeadline = 30 * time.Minute
)

// Config says where tasks go and how they are delivered.
type Config struct {
	// QueuePath is the queue's full name: projects/P/locations/L/queues/Q.
	QueuePath string
	// TargetURL is the URL of the ProvisionTask function that receives
	// every task.
	TargetURL string
	// ServiceAccountEmail, when set, makes Cloud Tasks attach an OIDC token
	// of this service account to every request (what Cloud Run IAM checks).
	ServiceAccountEmail string
	// Audience is the OIDC token's audience; empty means TargetURL.
	Audience string
	// DispatchDeadline is how long Cloud Tasks waits for the handler before
	// counting the attempt as failed: zero for Cloud Tasks' default (10
	// minutes), else between MinDispatchDeadline and MaxDispatchDeadline.
	DispatchDeadline time.Duration
}

var queuePathRE = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/queues/[^/]+$`)

func (c Config) validate() error {
	if !queuePathRE.MatchString(c.QueuePath) {
		return fmt.Errorf("queue path %q: want projects/P/locations/L/queues/Q", c.QueuePath)
	}
	u, err := url.Parse(c.TargetURL)
	if err != nil {
		return fmt.Errorf("target URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("target URL %q: want an absolute http or https URL", c.TargetURL)
	}
	if d := c.DispatchDeadline; d != 0 && (d < MinDispatchDeadline || d > MaxDispatchDeadline) {
		return fmt.Errorf("dispatch deadline %v: want zero or between %v and %v", d, MinDispatchDeadline, MaxDispatchDeadline)
	}
	return nil
}

// Queue is a queue.Queue backed by a Cloud Tasks queue. Its methods are safe
// for concurrent use.
type Queue struct {
	client *cloudtasks.Client
	cfg    Config
	now    func() time.Time
}

var _ queue.Queue = (*Queue)(nil)

// New returns a Queue that creates tasks in cfg.QueuePath. opts configure the
// Cloud Tasks client (NewEmulatorClientOptions for the emulator); the client
// connects lazily, so New makes no network call. Close releases the client.
func New(ctx context.Context, cfg Config, opts ...option.ClientOption) (*Queue, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cloudtasks: config: %w", err)
	}
	client, err := cloudtasks.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("cloudtasks: new client: %w", err)
	}
	return &Queue{client: client, cfg: cfg, now: time.Now}, nil
}

// NewEmulatorClientOptions returns client options for the Cloud Tasks
// emulator at addr (host:port): plaintext gRPC, no credentials.
func NewEmulatorClientOptions(addr string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// Close releases the client's connection.
func (q *Queue) Close() error {
	if err := q.client.Close(); err != nil {
		return fmt.Errorf("cloudtasks: close client: %w", err)
	}
	return nil
}

// Enqueue creates the task under its deterministic name. A name that Cloud
// Tasks already holds (the task is pending, or completed recently) is not an
// error: the task is not created again.
func (q *Queue) Enqueue(ctx context.Context, t queue.Task) error {
	req, err := q.createTaskRequest(t)
	if err != nil {
		return fmt.Errorf("cloudtasks: enqueue %s: %w", t.Name(), err)
	}
	if _, err := q.client.CreateTask(ctx, req); err != nil {
		if status.Code(err) == codes.AlreadyExists {
			return nil
		}
		return fmt.Errorf("cloudtasks: enqueue %s: %w", t.Name(), err)
	}
	return nil
}

// TaskName returns the full Cloud Tasks name the task is created under.
func (q *Queue) TaskName(t queue.Task) string {
	return q.cfg.QueuePath + "/tasks/" + TaskID(t.Name())
}

// body is the JSON that Cloud Tasks POSTs to the handler: ids only.
type body struct {
	DeploymentID string          `json:"deployment_id"`
	Step         deployment.Step `json:"step"`
	Seq          int             `json:"seq"`
	Run          int             `json:"run,omitempty"`
}

func (q *Queue) createTaskRequest(t queue.Task) (*cloudtaskspb.CreateTaskRequest, error) {
	payload, err := json.Marshal(body{DeploymentID: t.DeploymentID, Step: t.Step, Seq: t.Seq, Run: t.Run})
	if err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	httpReq := &cloudtaskspb.HttpRequest{
		Url:        q.cfg.TargetURL,
		HttpMethod: cloudtaskspb.HttpMethod_POST,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       payload,
	}
	if q.cfg.ServiceAccountEmail != "" {
		audience := q.cfg.Audience
		if audience == "" {
			audience = q.cfg.TargetURL
		}
		httpReq.AuthorizationHeader = &cloudtaskspb.HttpRequest_OidcToken{
			OidcToken: &cloudtaskspb.OidcToken{ServiceAccountEmail: q.cfg.ServiceAccountEmail, Audience: audience},
		}
	}
	task := &cloudtaskspb.Task{
		Name:        q.TaskName(t),
		MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: httpReq},
	}
	if t.Delay > 0 {
		task.ScheduleTime = timestamppb.New(q.now().Add(t.Delay))
	}
	if q.cfg.DispatchDeadline != 0 {
		task.DispatchDeadline = durationpb.New(q.cfg.DispatchDeadline)
	}
	return &cloudtaskspb.CreateTaskRequest{Parent: q.cfg.QueuePath, Task: task}, nil
}

// TaskID turns a task name into a valid Cloud Tasks task id (letters, digits,
// '-' and '_', at most MaxTaskIDLength characters). A name that is already
// valid is kept as it is; any other gets its invalid characters replaced by
// '_', is shortened if needed, and ends with a hash of the original name, so
// that distinct names stay distinct.
func TaskID(name string) string {
	if name != "" && len(name) <= MaxTaskIDLength && !strings.ContainsFunc(name, invalidIDRune) {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:8])
	clean := strings.Map(func(r rune) rune {
		if invalidIDRune(r) {
			return '_'
		}
		return r
	}, name)
	// clean is ASCII now, so cutting bytes cuts characters.
	if limit := MaxTaskIDLength - len(suffix); len(clean) > limit {
		clean = clean[:limit]
	}
	return clean + suffix
}

func invalidIDRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}
