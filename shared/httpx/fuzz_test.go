package httpx

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseObject(f *testing.F) {
	for _, seed := range []string{
		``, ` `, "\t\r\n", `{}`, ` {"a":1} `, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"a":1,"a":2}}`,
		`{"a":{"b":[1,{"c":null}]}}`, `{"n":1e999999}`, `{"n":123456789012345678901234567890}`, `{"n":-0.0e-400}`,
		`{"a":1} trailing`, `{"a":1}{"b":2}`, `{"a":1}}`, `{"a":1} {`, "\xef\xbb\xbf{}", "{}\x00", `[]`, `[{}]`,
		`null`, `"{}"`, `1`, `{`, `{"a"}`, `{"a":}`, `{'a':1}`, `{"a":1,}`, "{\"\xff\":1,\"\xfe\":2}",
		"{\"a\":\"\xff\"}", `{"\ud800":1}`, strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000),
		`{"":1}`, `{"a":1}` + strings.Repeat(" ", 100),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, herr := ParseObject(body)
		if herr != nil {
			checkError(t, herr, http.StatusBadRequest)
			if m != nil {
				t.Errorf("error %v with a result %v", herr, m)
			}
			return
		}
		if m == nil {
			t.Fatal("no error and no object")
		}
		// The input was exactly one JSON object.
		trimmed := bytes.TrimSpace(body)
		if !json.Valid(trimmed) || trimmed[0] != '{' {
			t.Fatalf("accepted %q, not one JSON object", body)
		}
		// With distinct keys: every key of the input is in the result once.
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		keys := 0
		for dec.More() {
			if _, err := dec.Token(); err != nil {
				t.Fatal(err)
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				t.Fatal(err)
			}
			keys++
		}
		if keys != len(m) {
			t.Fatalf("accepted %q with %d keys into %d fields: a repeated key slipped through", body, keys, len(m))
		}
		// The result re-marshals to valid JSON, and every value is valid JSON.
		out, err := json.Marshal(m)
		if err != nil || !json.Valid(out) {
			t.Fatalf("result of %q re-marshals to %q, %v", body, out, err)
		}
		for k, v := range m {
			if !json.Valid(v) {
				t.Fatalf("field %q holds invalid JSON %q", k, v)
			}
		}
	})
}

// checkError fails unless e is a 400 or 413 in the contract's shape.
func checkError(t *testing.T, e *Error, want ...int) {
	t.Helper()
	ok := false
	for _, w := range want {
		ok = ok || e.Status == w
	}
	if !ok {
		t.Fatalf("status %d, want one of %v: %+v", e.Status, want, e)
	}
	if e.Name == "" || e.Message == "" || e.Details == nil || !utf8.ValidString(e.Message) {
		t.Fatalf("error not in the contract's shape: %+v", e)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || len(m) != 3 || m["error"] == nil || m["message"] == nil || m["details"] == nil {
		t.Fatalf("marshalled error %s is not {error, message, details}", b)
	}
}

// FuzzDecodeObject adds the size limit: DecodeObject answers 413 exactly
// when the body is over MaxBody, else what ParseObject answers.
func FuzzDecodeObject(f *testing.F) {
	f.Add([]byte(`{"a":1}`), uint32(0))
	f.Add([]byte(`{"a":"`), uint32(MaxBody))
	f.Add([]byte(` `), uint32(MaxBody-7))
	f.Add([]byte(`x`), uint32(MaxBody+1))
	f.Fuzz(func(t *testing.T, head []byte, pad uint32) {
		pad %= 2 * MaxBody
		body := append(append([]byte{}, head...), bytes.Repeat([]byte(" "), int(pad))...)
		req, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		m, herr := DecodeObject(req)
		if len(body) > MaxBody {
			if herr == nil || herr.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("%d bytes: %v, want 413", len(body), herr)
			}
			checkError(t, herr, http.StatusRequestEntityTooLarge)
			return
		}
		pm, perr := ParseObject(body)
		if (herr == nil) != (perr == nil) || len(m) != len(pm) {
			t.Fatalf("DecodeObject = %v, %v; ParseObject = %v, %v", m, herr, pm, perr)
		}
		if herr != nil {
			checkError(t, herr, http.StatusBadRequest)
		}
	})
}

// FuzzFields: whatever a field holds, String and Int take it only when it
// has their JSON type. null is a wrong type for both (no field is
// nullable), and a string, numeric or not, is never an integer.
func FuzzFields(f *testing.F) {
	for _, seed := range []string{
		`null`, ` null `, `"3"`, `"-1"`, `" 7"`, `"1e1"`, `3`, `-0`, `1e2`, `1.0`, `1.5`, `99999999999999999999`,
		`""`, `"  "`, `"ok"`, `"a\u0000b"`, `true`, `[]`, `{}`, `[1]`, `"` + strings.Repeat("x", 300) + `"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		body := append(append([]byte(`{"f":`), value...), '}')
		raw, herr := ParseObject(body)
		if herr != nil {
			return // not a JSON value: ParseObject's 400
		}
		v := bytes.TrimSpace(value)
		null := string(v) == "null"
		isString := len(v) > 0 && v[0] == '"'

		fs := NewFields(raw)
		s, ok := fs.String("f", 256)
		if ok == (fs.Errs["f"] != "") {
			t.Fatalf("String(%s) = %q, %v with reason %q", value, s, ok, fs.Errs["f"])
		}
		if ok && (null || !isString || s == "" || len(s) > 256) {
			t.Fatalf("String took %s as %q", value, s)
		}
		if null && !strings.Contains(fs.Errs["f"], "null") {
			t.Fatalf("String(null) reason %q does not say null", fs.Errs["f"])
		}

		fi := NewFields(raw)
		n := fi.Int("f", -1000, 1000, 4242)
		bad := fi.Errs["f"] != ""
		if bad != (n == 4242) {
			t.Fatalf("Int(%s) = %d with reason %q", value, n, fi.Errs["f"])
		}
		if !bad {
			var want json.Number
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.UseNumber()
			if null || isString || dec.Decode(&want) != nil || want.String() != string(v) {
				t.Fatalf("Int took %s, not a JSON number, as %d", value, n)
			}
			if got, err := want.Int64(); err != nil || got != int64(n) {
				t.Fatalf("Int took %s as %d", value, n)
			}
		}
		if (null || isString) && !bad {
			t.Fatalf("Int took %s", value)
		}
		if e := fi.Errs.Err(); e != nil {
			checkError(t, e, http.StatusUnprocessableEntity)
		}
	})
}

// FuzzQuery: a query string url.ParseQuery refuses (bad escapes, ';'), an
// unknown or repeated parameter is a 422; what passes is exactly what
// url.ParseQuery reads, known names once each.
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{"", "limit=5", "%zz=1", "a;b=c", "limit=5;x=1", "limit=%", "limit=1&limit=2",
		"nope=1", "limit=5&", "&&", "limit", "status=ready&cursor=abc%3D", "+=+", "limit=%41"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := &http.Request{URL: &url.URL{Path: "/", RawQuery: rawQuery}}
		q, herr := Query(req, "limit", "cursor", "status")
		want, perr := url.ParseQuery(rawQuery)
		if perr != nil {
			if herr == nil {
				t.Fatalf("accepted %q, which url.ParseQuery refuses: %v", rawQuery, perr)
			}
			checkError(t, herr, http.StatusUnprocessableEntity)
			return
		}
		clean := true
		for k, vs := range want {
			if (k != "limit" && k != "cursor" && k != "status") || len(vs) > 1 {
				clean = false
			}
		}
		if !clean {
			if herr == nil {
				t.Fatalf("accepted %q with an unknown or repeated parameter", rawQuery)
			}
			checkError(t, herr, http.StatusUnprocessableEntity)
			return
		}
		if herr != nil {
			t.Fatalf("refused %q: %+v", rawQuery, herr)
		}
		if len(q) != len(want) {
			t.Fatalf("Query(%q) = %v, want %v", rawQuery, q, want)
		}
		for k := range want {
			if q.Get(k) != want.Get(k) {
				t.Fatalf("Query(%q)[%s] = %q, want %q", rawQuery, k, q.Get(k), want.Get(k))
			}
		}
	})
}
