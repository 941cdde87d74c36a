package runpod

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	// Records is a pointer so that an answer without the list ({}) is told
	// from an empty one.
	Records *[]struct {
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
	if w.Records == nil {
		return ServerlessSpend{}, &AnswerError{What: fmt.Sprintf("RunPod's billing answer for endpoint %s has no records list", id)}
	}
	out := ServerlessSpend{From: w.Metadata.Query.StartTime, To: w.Metadata.Query.EndTime}
	for _, r := range *w.Records {
		switch {
		case r.ServerlessID != id:
			// Asked for one endpoint, answered for another: nothing in
			// the answer can be trusted to be this endpoint's.
			return ServerlessSpend{}, &AnswerError{What: fmt.Sprintf("RunPod's billing answer for endpoint %s holds a record of another endpoint (%q)", id, r.ServerlessID)}
		case !(r.TotalAmount >= 0) || math.IsInf(r.TotalAmount, 0):
			return ServerlessSpend{}, &AnswerError{What: fmt.Sprintf("RunPod's billing answer for endpoint %s holds an amount of %g", id, r.TotalAmount)}
		}
		out.TotalUSD += r.TotalAmount
		out.Records++
	}
	return out, nil
}

// AnswerError is a 2xx answer from RunPod that cannot be used (a billing
// answer without records, or with another endpoint's). Error() is a
// sentence for the owner.
type AnswerError struct{ What string }

func (e *AnswerError) Error() string { return e.What }

// Message is the sentence a user is told of a failed call: RunPod's own
// answer, that it did not answer in time, or that it could not be reached
// (never a transport detail).
func Message(err error) string {
	var re *Error
	var ae *AnswerError
	switch {
	case errors.As(err, &re):
		return re.Error()
	case errors.As(err, &ae):
		return ae.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "RunPod did not answer in time"
	}
	return "Could not reach RunPod"
}
