package runpodsim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// OpListServerlessBilling is the operation id of GET /v2/billing/serverless.
const OpListServerlessBilling = "listServerlessBilling"

// WithBillingSpeed multiplies every amount the simulator bills: at 3600 a
// worker's second costs what an hour of its GPU does, so a test reaches a
// spend limit in seconds. The default is 1: RunPod's own rate.
func WithBillingSpeed(f float64) Option { return func(c *config) { c.billingSpeed = f } }

// charge is one worker's billed time: from its start on a GPU until it
// stops (end zero while it runs), at its GPU's serverless price.
type charge struct {
	key, endpoint string
	start, end    time.Time
	perHour       float64
}

// amount is what ch costs within [from, to) at time now.
func (ch *charge) amount(from, to, now time.Time, speed float64) float64 {
	end := ch.end
	if end.IsZero() {
		end = now
	}
	lo, hi := maxTime(ch.start, from), minTime(end, to)
	if !hi.After(lo) {
		return 0
	}
	return hi.Sub(lo).Seconds() * ch.perHour / 3600 * speed
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// billLocked opens a charge for w, just placed on card, and makes w's
// cancel close it: every path that stops a worker cancels it with s.mu held.
func (s *Server) billLocked(e *endpoint, w *worker, card string) {
	ch := &charge{key: e.owner, endpoint: e.id, start: w.startedAt, perHour: s.priceOf(card)}
	s.charges = append(s.charges, ch)
	stop := w.cancel
	w.cancel = func() {
		if ch.end.IsZero() {
			ch.end = time.Now().UTC()
		}
		stop()
	}
}

// priceOf is the serverless price per hour of the pool card belongs to.
func (s *Server) priceOf(card string) float64 {
	for _, p := range s.cfg.catalog.Pools() {
		for _, c := range p.Cards {
			if c.ID == card {
				return p.PricePerHour
			}
		}
	}
	return 0
}

// Spent is what endpoint id of key has cost so far (every bucket).
func (s *Server) Spent(key, id string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	total := 0.0
	for _, ch := range s.charges {
		if ch.key == key && ch.endpoint == id {
			total += ch.amount(ch.start, now.Add(time.Hour), now, s.speed())
		}
	}
	return total
}

func (s *Server) speed() float64 {
	if s.cfg.billingSpeed > 0 {
		return s.cfg.billingSpeed
	}
	return 1
}

// bucketStart snaps t down to the start of its bucket of size.
func bucketStart(t time.Time, size string) time.Time {
	t = t.UTC()
	switch size {
	case "hour":
		return t.Truncate(time.Hour)
	case "day":
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case "week":
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)) // Monday
	case "month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	default: // year
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	}
}

func nextBucket(t time.Time, size string) time.Time {
	switch size {
	case "hour":
		return t.Add(time.Hour)
	case "day":
		return t.AddDate(0, 0, 1)
	case "week":
		return t.AddDate(0, 0, 7)
	case "month":
		return t.AddDate(0, 1, 0)
	default:
		return t.AddDate(1, 0, 0)
	}
}

type wireBillingAmounts struct {
	TotalAmount float64 `json:"totalAmount"`
	GPUAmount   float64 `json:"gpuAmount"`
	CPUAmount   float64 `json:"cpuAmount"`
	DiskAmount  float64 `json:"diskAmount"`
	FeeAmount   float64 `json:"feeAmount"`
}

type wireBillingRecord struct {
	StartTime    time.Time `json:"startTime"`
	EndTime      time.Time `json:"endTime"`
	ServerlessID string    `json:"serverlessId"`
	wireBillingAmounts
}

// maxBuckets bounds the records of one answer (a year of hours).
const maxBuckets = 24 * 366

// serverlessBilling serves GET /v2/billing/serverless: the key's endpoints'
// GPU time in buckets (the simulator bills GPU time only: no CPU, disk or
// fee), deleted endpoints included.
func (s *Server) serverlessBilling(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	for name := range q {
		if !slices.Contains([]string{"startTime", "endTime", "bucketSize", "lastN", "serverlessId"}, name) {
			writeProblem(w, badRequest(fmt.Sprintf("unknown query parameter %q", name)))
			return
		}
	}
	size := q.Get("bucketSize")
	if size == "" {
		size = "day"
	}
	if !slices.Contains([]string{"hour", "day", "week", "month", "year"}, size) {
		writeProblem(w, invalid([]string{fmt.Sprintf("bucketSize: value must be one of 'hour', 'day', 'week', 'month', 'year', got %q", size)}))
		return
	}
	now := time.Now().UTC()
	var from, to time.Time
	if ln := q.Get("lastN"); ln != "" {
		if q.Get("startTime") != "" || q.Get("endTime") != "" {
			writeProblem(w, badRequest("lastN is mutually exclusive with startTime/endTime"))
			return
		}
		n, err := strconv.Atoi(ln)
		if err != nil || n < 1 {
			writeProblem(w, invalid([]string{"lastN: must be an integer of at least 1"}))
			return
		}
		to = nextBucket(bucketStart(now, size), size)
		from = bucketStart(now, size)
		for i := 1; i < n && i < maxBuckets; i++ {
			from = bucketStart(from.Add(-time.Second), size)
		}
	} else {
		from, to = now.AddDate(0, 0, -30), now
		for _, p := range []struct {
			name string
			dst  *time.Time
		}{{"startTime", &from}, {"endTime", &to}} {
			if v := q.Get(p.name); v != "" {
				t, err := time.Parse(time.RFC3339, v)
				if err != nil {
					writeProblem(w, invalid([]string{p.name + ": must be an RFC 3339 date-time"}))
					return
				}
				*p.dst = t.UTC()
			}
		}
		from = bucketStart(from, size)
		if b := bucketStart(to, size); !b.Equal(to) {
			to = nextBucket(b, size)
		}
		if !to.After(from) {
			writeProblem(w, badRequest("endTime must be after startTime"))
			return
		}
	}
	id := q.Get("serverlessId")
	s.mu.Lock()
	byEndpoint := map[string][]*charge{}
	var order []string
	for _, ch := range s.charges {
		if ch.key != key || (id != "" && ch.endpoint != id) {
			continue
		}
		if _, ok := byEndpoint[ch.endpoint]; !ok {
			order = append(order, ch.endpoint)
		}
		byEndpoint[ch.endpoint] = append(byEndpoint[ch.endpoint], ch)
	}
	type out struct {
		Records  []wireBillingRecord `json:"records"`
		Metadata struct {
			Query struct {
				StartTime    time.Time `json:"startTime"`
				EndTime      time.Time `json:"endTime"`
				BucketSize   string    `json:"bucketSize"`
				ServerlessID *string   `json:"serverlessId"`
			} `json:"query"`
			RecordCount           int                `json:"recordCount"`
			UniqueServerlessCount int                `json:"uniqueServerlessCount"`
			Totals                wireBillingAmounts `json:"totals"`
		} `json:"metadata"`
	}
	res := out{Records: []wireBillingRecord{}}
	res.Metadata.Query.StartTime, res.Metadata.Query.EndTime, res.Metadata.Query.BucketSize = from, to, size
	if id != "" {
		res.Metadata.Query.ServerlessID = &id
	}
	seen := map[string]bool{}
	n := 0
	for b := from; b.Before(to) && n < maxBuckets; b, n = nextBucket(b, size), n+1 {
		end := nextBucket(b, size)
		for _, ep := range order {
			amt := 0.0
			for _, ch := range byEndpoint[ep] {
				amt += ch.amount(b, end, now, s.speed())
			}
			if amt <= 0 {
				continue
			}
			seen[ep] = true
			rec := wireBillingRecord{StartTime: b, EndTime: end, ServerlessID: ep,
				wireBillingAmounts: wireBillingAmounts{TotalAmount: amt, GPUAmount: amt}}
			res.Records = append(res.Records, rec)
			res.Metadata.Totals.TotalAmount += amt
			res.Metadata.Totals.GPUAmount += amt
		}
	}
	s.mu.Unlock()
	res.Metadata.RecordCount = len(res.Records)
	res.Metadata.UniqueServerlessCount = len(seen)
	writeJSON(w, http.StatusOK, res)
}
