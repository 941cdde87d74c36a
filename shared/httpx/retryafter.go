package httpx

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps every Retry-After the service honours (RunPod's, the
// Hub's, a webhook receiver's): a bogus header must not park work for days.
const MaxRetryAfter = time.Hour

// RetryAfter reads h's Retry-After header (RFC 9110 section 10.2.3:
// delay-seconds, or an HTTP date taken relative to now and rounded to the
// second), clamped to [0, MaxRetryAfter]. Absent or unreadable is 0.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now).Round(time.Second)
	}
	return min(max(d, 0), MaxRetryAfter)
}
