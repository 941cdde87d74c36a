package httpx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Number returns the number field name. ok is false when it is absent or
// invalid (then the reason is recorded): not a JSON number (null and
// numeric strings included), not finite, or outside [lo, hi].
func (f *Fields) Number(name string, lo, hi float64) (v float64, ok bool) {
	raw, given := f.raw[name]
	if !given {
		return 0, false
	}
	if isNull(raw) {
		f.Errs.Add(name, "must be a number, not null")
		return 0, false
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || (t[0] != '-' && (t[0] < '0' || t[0] > '9')) {
		// json.Number would take "3" (a string) as the number 3.
		if len(t) > 0 && t[0] == '"' {
			f.Errs.Add(name, "must be a number (a JSON number, not a string)")
		} else {
			f.Errs.Add(name, "must be a number")
		}
		return 0, false
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		f.Errs.Add(name, "must be a number")
		return 0, false
	}
	v, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		f.Errs.Add(name, "must be a finite number")
		return 0, false
	}
	if v < lo || v > hi {
		f.Errs.Add(name, fmt.Sprintf("must be between %s and %s", strconv.FormatFloat(lo, 'f', -1, 64), strconv.FormatFloat(hi, 'f', -1, 64)))
		return 0, false
	}
	return v, true
}

// Time returns the RFC 3339 date-time field name, in UTC. ok is false when
// it is absent or invalid (then the reason is recorded): not a string, or
// not an RFC 3339 date-time with a time zone.
func (f *Fields) Time(name string) (t time.Time, ok bool) {
	s, ok := f.String(name, 64)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		f.Errs.Add(name, "must be an RFC 3339 date-time such as 2026-12-31T23:00:00Z")
		return time.Time{}, false
	}
	return t.UTC(), true
}

// Object returns a reader of the object field name, whose reasons the
// caller merges back with Nested. ok is false when it is absent or invalid
// (then the reason is recorded): not a JSON object (null included), or an
// object that repeats a key (Go would keep the last one silently).
func (f *Fields) Object(name string) (sub *Fields, ok bool) {
	raw, given := f.raw[name]
	if !given {
		return nil, false
	}
	if isNull(raw) {
		f.Errs.Add(name, "must be an object, not null")
		return nil, false
	}
	t := bytes.TrimSpace(raw)
	var m map[string]json.RawMessage
	if len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &m) != nil {
		f.Errs.Add(name, "must be an object")
		return nil, false
	}
	if dupe := duplicateKey(t); dupe != "" {
		f.Errs.Add(name, "repeats the field "+strconv.Quote(dupe))
		return nil, false
	}
	return NewFields(m), true
}

// Nested records sub's reasons as those of name's fields ("name.field").
func (f *Fields) Nested(name string, sub *Fields) {
	for k, v := range sub.Errs {
		f.Errs.Add(name+"."+k, v)
	}
}
