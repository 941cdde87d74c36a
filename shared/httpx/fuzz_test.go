package httpx

import (
	"bytes"
	"encoding/json"
	"net/http"
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
