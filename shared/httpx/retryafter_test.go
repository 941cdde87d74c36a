package httpx

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   []string // header values; nil: no header
		want time.Duration
	}{
		{"absent", nil, 0},
		{"empty", []string{""}, 0},
		{"seconds", []string{"30"}, 30 * time.Second},
		{"seconds with spaces", []string{" 7 "}, 7 * time.Second},
		{"zero", []string{"0"}, 0},
		{"negative", []string{"-5"}, 0},
		{"capped seconds", []string{"999999"}, MaxRetryAfter},
		{"huge seconds", []string{"99999999999999999999"}, 0}, // not an int64: unreadable
		{"http date", []string{now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"http date rounded", []string{now.Add(90*time.Second + 400*time.Millisecond).Format(http.TimeFormat)}, 90 * time.Second},
		{"http date past", []string{now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"capped date", []string{now.Add(48 * time.Hour).Format(http.TimeFormat)}, MaxRetryAfter},
		{"garbage", []string{"soon"}, 0},
		{"fraction", []string{"1.5"}, 0},
		{"first of two", []string{"3", "9"}, 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.in {
				h.Add("Retry-After", v)
			}
			if got := RetryAfter(h, now); got != tc.want {
				t.Errorf("RetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}
