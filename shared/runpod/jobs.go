package runpod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// Job statuses, as the job API reports them.
const (
	JobInQueue    = "IN_QUEUE"
	JobInProgress = "IN_PROGRESS"
	JobCompleted  = "COMPLETED"
	JobFailed     = "FAILED"
)

// JobResult is a job as the job API reports it.
type JobResult struct {
	ID     string          `json:"id"`
	Status string          `json:"status"`
	Output json.RawMessage `json:"output,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// minRunsyncWait is the shortest wait /runsync takes.
const minRunsyncWait = time.Second

// RunSync submits a job to the queue endpoint whose base URL is endpointURL
// (Endpoint.URL: https://api.runpod.ai/v2/{id}) and waits up to wait (at
// least a second) for its result: POST {endpointURL}/runsync?wait=ms with
// {"input": input}. A job not finished by then comes back IN_QUEUE or
// IN_PROGRESS, and runs on.
func (c *Client) RunSync(ctx context.Context, key secret.Secret, endpointURL string, input any, wait time.Duration) (*JobResult, error) {
	u, err := url.Parse(endpointURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("runpod: running a job: the endpoint has no usable URL")
	}
	wait = max(wait, minRunsyncWait)
	target := strings.TrimRight(endpointURL, "/") + fmt.Sprintf("/runsync?wait=%d", wait.Milliseconds())
	var out JobResult
	if err := c.doURL(ctx, key, "POST", target, "POST "+u.Path+"/runsync", map[string]any{"input": input}, &out); err != nil {
		return nil, fmt.Errorf("running a job on RunPod endpoint %s: %w", u.Path, err)
	}
	return &out, nil
}

// CancelJob cancels job id on the queue endpoint at endpointURL (POST
// {endpointURL}/cancel/{id}): a job left in the queue would make RunPod
// start a worker for it.
func (c *Client) CancelJob(ctx context.Context, key secret.Secret, endpointURL, id string) error {
	u, err := url.Parse(endpointURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || id == "" {
		return errors.New("runpod: cancelling a job: no usable endpoint URL or job id")
	}
	target := strings.TrimRight(endpointURL, "/") + "/cancel/" + url.PathEscape(id)
	if err := c.doURL(ctx, key, "POST", target, "POST "+u.Path+"/cancel", nil, nil); err != nil {
		return fmt.Errorf("cancelling job %s on RunPod endpoint %s: %w", id, u.Path, err)
	}
	return nil
}
