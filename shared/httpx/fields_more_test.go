package httpx

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFieldsNumberAndTime(t *testing.T) {
	tests := []struct {
		body    string
		wantNum float64
		numOK   bool
		numErr  string
		wantT   time.Time
		timeOK  bool
		timeErr string
	}{
		{`{"n": 12.5, "t": "2026-12-31T23:00:00+01:00"}`, 12.5, true, "", time.Date(2026, 12, 31, 22, 0, 0, 0, time.UTC), true, ""},
		{`{"n": 1e2}`, 100, true, "", time.Time{}, false, ""},
		{`{"n": "12.5", "t": 5}`, 0, false, "must be a number (a JSON number, not a string)", time.Time{}, false, "must be a string"},
		{`{"n": null, "t": null}`, 0, false, "must be a number, not null", time.Time{}, false, "must be a string, not null"},
		{`{"n": 0, "t": "tomorrow"}`, 0, false, "must be between 0.01 and 1000", time.Time{}, false, "must be an RFC 3339 date-time such as 2026-12-31T23:00:00Z"},
		{`{"n": 1001, "t": "2026-12-31T23:00:00"}`, 0, false, "must be between 0.01 and 1000", time.Time{}, false, "must be an RFC 3339 date-time such as 2026-12-31T23:00:00Z"},
		{`{"n": true}`, 0, false, "must be a number", time.Time{}, false, ""},
		{`{"n": [1]}`, 0, false, "must be a number", time.Time{}, false, ""},
	}
	for _, tc := range tests {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tc.body), &raw); err != nil {
			t.Fatal(err)
		}
		f := NewFields(raw)
		n, ok := f.Number("n", 0.01, 1000)
		if ok != tc.numOK || n != tc.wantNum || f.Errs["n"] != tc.numErr {
			t.Errorf("%s: Number = %v, %v, error %q; want %v, %v, %q", tc.body, n, ok, f.Errs["n"], tc.wantNum, tc.numOK, tc.numErr)
		}
		tm, ok := f.Time("t")
		if ok != tc.timeOK || !tm.Equal(tc.wantT) || f.Errs["t"] != tc.timeErr {
			t.Errorf("%s: Time = %v, %v, error %q; want %v, %v, %q", tc.body, tm, ok, f.Errs["t"], tc.wantT, tc.timeOK, tc.timeErr)
		}
	}
}

// TestFieldsObject: a nested object is read as strictly as the body: no
// null, no repeated key, and its fields' reasons come back under
// "name.field".
func TestFieldsObject(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
		errs FieldErrors
	}{
		{`{"o": {"a": 1}}`, true, FieldErrors{}},
		{`{"o": {}}`, true, FieldErrors{}},
		{`{}`, false, FieldErrors{}},
		{`{"o": null}`, false, FieldErrors{"o": "must be an object, not null"}},
		{`{"o": [1]}`, false, FieldErrors{"o": "must be an object"}},
		{`{"o": "x"}`, false, FieldErrors{"o": "must be an object"}},
		{`{"o": {"a": 1, "a": 2}}`, false, FieldErrors{"o": `repeats the field "a"`}},
		{`{"o": {"a": null}}`, true, FieldErrors{"o.a": "must be a number, not null"}},
	} {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tc.body), &raw); err != nil {
			t.Fatal(err)
		}
		f := NewFields(raw)
		sub, ok := f.Object("o")
		if ok {
			sub.Number("a", 0, 10)
			f.Nested("o", sub)
		}
		if ok != tc.ok || len(f.Errs) != len(tc.errs) {
			t.Errorf("%s: ok %v, errors %v; want %v, %v", tc.body, ok, f.Errs, tc.ok, tc.errs)
			continue
		}
		for k, v := range tc.errs {
			if f.Errs[k] != v {
				t.Errorf("%s: errors %v, want %v", tc.body, f.Errs, tc.errs)
			}
		}
	}
}
