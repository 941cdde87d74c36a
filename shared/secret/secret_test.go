package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const plain = "rpa_SUPERSECRET"
	s := New(plain)
	wrapped := struct {
		Key secret
	}{Key: secret{s}}
	var out []string
	for _, verb := range []string{"%s", "%v", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10s"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, wrapped), fmt.Sprintf(verb, &s))
	}
	j, err := json.Marshal(map[string]any{"k": s, "p": &s})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", s, "group", wrapped)
	out = append(out, buf.String())
	for _, o := range out {
		if strings.Contains(o, plain) || strings.Contains(o, fmt.Sprintf("%x", plain)) {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if s.Reveal() != plain {
		t.Errorf("Reveal() = %q", s.Reveal())
	}
}

type secret struct{ S Secret }
