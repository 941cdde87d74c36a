package runpod

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// WorkerStatus is a worker's derived state (openapi WorkerStatus).
type WorkerStatus string

// Worker states, exactly as RunPod spells them.
const (
	// WorkerRunning is a worker processing a job.
	WorkerRunning WorkerStatus = "RUNNING"
	// WorkerIdle is a worker ready and polling for jobs.
	WorkerIdle WorkerStatus = "IDLE"
	// WorkerInitializing is a worker starting up, not yet ready.
	WorkerInitializing WorkerStatus = "INITIALIZING"
	// WorkerThrottled is a worker waiting on compute capacity (a stock-out).
	WorkerThrottled WorkerStatus = "THROTTLED"
	// WorkerUnhealthy is a worker failing health checks (e.g. a crash loop).
	WorkerUnhealthy WorkerStatus = "UNHEALTHY"
)

// Ready reports whether a worker in this state has a loaded container
// (RUNNING or IDLE).
func (s WorkerStatus) Ready() bool { return s == WorkerRunning || s == WorkerIdle }

// Worker is one active worker of an endpoint.
type Worker struct {
	ID     string
	Status WorkerStatus
	// IsStale: the worker runs an older endpoint configuration.
	IsStale  bool
	GPUCount int
	// GPUTypeID is the card the worker is placed on ("NVIDIA A40"), empty
	// until placed.
	GPUTypeID string
	// DataCenterID is empty until placed.
	DataCenterID  string
	Image         string
	UptimeSeconds int
	// StartedAt is zero if the worker has not started.
	StartedAt time.Time
}

type wireWorker struct {
	ID            string       `json:"id"`
	Status        WorkerStatus `json:"status"`
	IsStale       bool         `json:"isStale"`
	GPUCount      int          `json:"gpuCount"`
	Image         *string      `json:"image"`
	UptimeSeconds *int         `json:"uptimeSeconds"`
	GPUTypeID     *string      `json:"gpuTypeId"`
	DataCenterID  *string      `json:"dataCenterId"`
	StartedAt     *time.Time   `json:"startedAt"`
}

type listWorkersResponse struct {
	Workers []wireWorker `json:"workers"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Workers lists the endpoint's active workers
// (GET /v2/serverless/{id}/workers). Scaled-down workers are not listed.
func (c *Client) Workers(ctx context.Context, key secret.Secret, endpointID string) ([]Worker, error) {
	if endpointID == "" {
		return nil, errors.New("runpod: listing workers: no endpoint id")
	}
	var w listWorkersResponse
	if err := c.do(ctx, key, "GET", "/serverless/"+url.PathEscape(endpointID)+"/workers", nil, &w); err != nil {
		return nil, fmt.Errorf("listing workers of RunPod endpoint %s: %w", endpointID, err)
	}
	out := make([]Worker, 0, len(w.Workers))
	for _, ww := range w.Workers {
		wk := Worker{
			ID:            ww.ID,
			Status:        ww.Status,
			IsStale:       ww.IsStale,
			GPUCount:      ww.GPUCount,
			GPUTypeID:     str(ww.GPUTypeID),
			DataCenterID:  str(ww.DataCenterID),
			Image:         str(ww.Image),
			UptimeSeconds: deref(ww.UptimeSeconds),
		}
		if ww.StartedAt != nil {
			wk.StartedAt = *ww.StartedAt
		}
		out = append(out, wk)
	}
	return out, nil
}

// CountByStatus counts workers per status.
func CountByStatus(workers []Worker) map[WorkerStatus]int {
	n := make(map[WorkerStatus]int, len(workers))
	for _, w := range workers {
		n[w.Status]++
	}
	return n
}
