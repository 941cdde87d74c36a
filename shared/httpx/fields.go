package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Fields reads the typed fields of a JSON object (ParseObject's result) and
// collects one reason per invalid field. No field is nullable: a null is a
// wrong type, like a number where a string is due, never "absent".
type Fields struct {
	raw  map[string]json.RawMessage
	Errs FieldErrors
}

// NewFields returns a reader of raw's fields.
func NewFields(raw map[string]json.RawMessage) *Fields {
	return &Fields{raw: raw, Errs: FieldErrors{}}
}

// Given reports whether the object holds name, whatever its value.
func (f *Fields) Given(name string) bool {
	_, ok := f.raw[name]
	return ok
}

// Unknown records "unknown field" for every field not in known.
func (f *Fields) Unknown(known map[string]bool) {
	for name := range f.raw {
		if !known[name] {
			f.Errs.Add(name, "unknown field")
		}
	}
}

// String returns the trimmed string field name. ok is false when it is
// absent or invalid (then the reason is recorded): not a string (null
// included), empty, longer than maxLen bytes, or holding control characters.
func (f *Fields) String(name string, maxLen int) (s string, ok bool) {
	raw, given := f.raw[name]
	if !given {
		return "", false
	}
	if isNull(raw) {
		f.Errs.Add(name, "must be a string, not null")
		return "", false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		f.Errs.Add(name, "must be a string")
		return "", false
	}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		f.Errs.Add(name, "must not be empty")
		return "", false
	case len(s) > maxLen:
		f.Errs.Add(name, fmt.Sprintf("must be at most %d characters", maxLen))
		return "", false
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		f.Errs.Add(name, "must not contain control characters")
		return "", false
	}
	return s, true
}

// Int returns the integer field name, def when it is absent or invalid (then
// the reason is recorded): not a JSON number (null and numeric strings such
// as "3" included), not a whole number, or outside [lo, hi].
func (f *Fields) Int(name string, lo, hi, def int) int {
	raw, given := f.raw[name]
	if !given {
		return def
	}
	if isNull(raw) {
		f.Errs.Add(name, "must be an integer, not null")
		return def
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || (t[0] != '-' && (t[0] < '0' || t[0] > '9')) {
		// json.Number would take "3" (a string) as the number 3.
		if len(t) > 0 && t[0] == '"' {
			f.Errs.Add(name, "must be an integer (a JSON number, not a string)")
		} else {
			f.Errs.Add(name, "must be an integer")
		}
		return def
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		f.Errs.Add(name, "must be an integer")
		return def
	}
	v, err := n.Int64()
	if err != nil {
		f.Errs.Add(name, "must be an integer")
		return def
	}
	if v < int64(lo) || v > int64(hi) {
		f.Errs.Add(name, fmt.Sprintf("must be between %d and %d", lo, hi))
		return def
	}
	return int(v)
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// QueryField is the details key of a query string that cannot be parsed.
const QueryField = "query"

// Query parses r's query string strictly: a malformed one (a bad percent
// escape, a ';' separator), a parameter not in known, or one given twice is
// a 422 naming it. net/http's own URL.Query drops what it cannot parse.
func Query(r *http.Request, known ...string) (url.Values, *Error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, FieldErrors{QueryField: "is malformed: " + queryProblem(err)}.Err()
	}
	errs := FieldErrors{}
	for name, vs := range q {
		switch {
		case !contains(known, name) && (name == "" || len(name) > 64 || !utf8.ValidString(name)):
			errs.Add(QueryField, "holds an unknown parameter")
		case !contains(known, name):
			errs.Add(name, "unknown query parameter")
		case len(vs) > 1:
			errs.Add(name, "must be given at most once")
		}
	}
	if e := errs.Err(); e != nil {
		return nil, e
	}
	return q, nil
}

// queryProblem names what url.ParseQuery disliked without echoing the
// (arbitrary) input back.
func queryProblem(err error) string {
	var esc url.EscapeError
	switch {
	case errors.As(err, &esc):
		return "a '%' must start an escape of two hexadecimal digits"
	case strings.Contains(err.Error(), "semicolon"):
		return "';' is not a separator (use '&')"
	}
	return "too many parameters"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
