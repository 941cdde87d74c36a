package webhook_test

import (
	"strings"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

func TestValidateURL(t *testing.T) {
	tests := []struct {
		url          string
		allowPrivate bool
		wantErr      string // substring; empty means valid
	}{
		{"https://example.com/webhook", false, ""},
		{"https://hooks.example.com:8443/a/b?token=x", false, ""},
		{"https://EXAMPLE.com./hook", false, ""},
		{"https://93.184.216.34/hook", false, ""},
		{"https://[2606:2800:220:1:248:1893:25c8:1946]/hook", false, ""},
		{"http://127.0.0.1:8080/hook", true, ""},
		{"http://localhost:9000/hook", true, ""},
		{"http://10.1.2.3/hook", true, ""},

		{"", false, "empty"},
		{"https://example.com/" + strings.Repeat("a", 2048), false, "limit is 2048"},
		{"https://example.com/a b", false, "space or control"},
		{"/relative/path", false, "absolute"},
		{"example.com/webhook", false, "absolute"},
		{"mailto:someone@example.com", false, "absolute"},
		{"http://example.com/webhook", false, "must use https"},
		{"ftp://example.com/webhook", false, "not supported"},
		{"javascript://example.com/%0aalert(1)", true, "not supported"},
		{"https://user:pass@example.com/hook", false, "user information"},
		{"https://user@example.com/hook", false, "user information"},
		{"https:///hook", false, "no host"},
		{"https://example.com:0/hook", false, "between 1 and 65535"},
		{"https://example.com:70000/hook", false, "between 1 and 65535"},
		{"https://example.com:/hook", false, "empty port"},
		{"https://127.0.0.1/hook", false, "non-public"},
		{"https://127.8.9.10/hook", false, "non-public"},
		{"https://[::1]/hook", false, "non-public"},
		{"https://[::ffff:127.0.0.1]/hook", false, "non-public"},
		{"https://10.0.0.1/hook", false, "non-public"},
		{"https://172.16.5.4/hook", false, "non-public"},
		{"https://192.168.1.1/hook", false, "non-public"},
		{"https://169.254.169.254/computeMetadata/v1/", false, "non-public"},
		{"https://100.64.0.1/hook", false, "non-public"},
		{"https://0.0.0.0/hook", false, "non-public"},
		{"https://[fe80::1]/hook", false, "non-public"},
		{"https://[fd00::1]/hook", false, "non-public"},
		{"https://[fe80::1%25eth0]/hook", true, "zone"},
		{"https://localhost/hook", false, "local machine"},
		{"https://LocalHost./hook", false, "local machine"},
		{"https://api.localhost/hook", false, "local machine"},
		{"https://metadata.google.internal/computeMetadata/v1/", false, "metadata server"},
		{"https://metadata/computeMetadata/v1/", false, "metadata server"},
		{"https://intranet/hook", false, "fully qualified"},
		{"https://2130706433/hook", false, "non-standard form"},
		{"https://0x7f.1/hook", false, "non-standard form"},
		{"https://bücher.example/hook", false, "punycode"},
		{"https://a..example.com/hook", false, "empty label"},
	}
	for _, tt := range tests {
		name := tt.url
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			err := webhook.ValidateURL(tt.url, tt.allowPrivate)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ValidateURL(%q, %v) = %v, want nil", tt.url, tt.allowPrivate, err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("ValidateURL(%q, %v) = nil, want an error about %q", tt.url, tt.allowPrivate, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("ValidateURL(%q, %v) = %q, want it to mention %q", tt.url, tt.allowPrivate, err, tt.wantErr)
			}
		})
	}
}

func TestValidateURLDoesNotEchoQuery(t *testing.T) {
	const token = "tok_supersecretvalue"
	for _, raw := range []string{
		"http://example.com/hook?t=" + token,
		"https://127.0.0.1/hook?t=" + token,
		"https://example.com/%zz?t=" + token,
	} {
		err := webhook.ValidateURL(raw, false)
		if err == nil {
			t.Fatalf("ValidateURL(%q) = nil, want an error", raw)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("error %q repeats the URL's token", err)
		}
	}
}
