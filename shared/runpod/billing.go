package runpod

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/secret"
)

// BillingBucket is the bucket size the spend is read in: RunPod's finest.
const BillingBucket = time.Hour

// ServerlessSpend is what one serverless endpoint cost over a window, from
// RunPod's billing records (GET /v2/billing/serverless).
type ServerlessSpend struct {
	// TotalUSD sums the records' totalAmount (GPU, CPU, disk and fee).
	TotalUSD float64
	// From and To are the window RunPod resolved (bucket-aligned; To is the
	// end of the current, in-progress bucket).
	From, To time.Time
	// Records counts the bucket records summed.
	Records int
}

type wireServerlessBilling struct {
	Records []struct {
		StartTime    time.Time `json:"startTime"`
		EndTime      time.Time `json:"endTime"`
		ServerlessID string    `json:"serverlessId"`
		TotalAmount  float64   `json:"totalAmount"`
	} `json:"records"`
	Metadata struct {
		Query struct {
			StartTime time.Time `json:"startTime"`
			EndTime   time.Time `json:"endTime"`
		} `json:"query"`
		RecordCount int `json:"recordCount"`
		Totals      struct {
			TotalAmount float64 `json:"totalAmount"`
		} `json:"totals"`
	} `json:"metadata"`
}

// EndpointSpend reads what endpoint id cost from since (rounded down to the
// hour by RunPod) to the end of the current hour, in hourly buckets.
func (c *Client) EndpointSpend(ctx context.Context, key secret.Secret, id string, since time.Time) (ServerlessSpend, error) {
	q := url.Values{}
	q.Set("serverlessId", id)
	q.Set("bucketSize", "hour")
	q.Set("startTime", since.UTC().Truncate(BillingBucket).Format(time.RFC3339))
	var w wireServerlessBilling
	if err := c.do(ctx, key, "GET", "/billing/serverless?"+q.Encode(), nil, &w); err != nil {
		return ServerlessSpend{}, fmt.Errorf("reading the billing of RunPod endpoint %s: %w", id, err)
	}
	out := ServerlessSpend{From: w.Metadata.Query.StartTime, To: w.Metadata.Query.EndTime}
	for _, r := range w.Records {
		if r.ServerlessID != id {
			continue // filtered by RunPod; never count another endpoint's
		}
		out.TotalUSD += r.TotalAmount
		out.Records++
	}
	return out, nil
}
