package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/visgate/deployment-orchestrator/shared/config"
)

func TestLogStartupSaysWhatTheConfigurationMeans(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // "LEVEL substring", one per line, in order
	}{
		{"defaults", nil, []string{
			"INFO data lives in /",
			"WARN accepting the test key test-api-key-12345",
			"INFO RunPod (https://api.runpod.io/v2) and the Hugging Face Hub (https://huggingface.co) are real: deployments need the internet",
		}},
		{"simulate", map[string]string{"SIMULATE": "1", "API_KEYS": "k1,k2", "API_KEY_HASHES": "bob:" + strings.Repeat("a", 64)}, []string{
			"INFO data lives in /",
			"INFO API keys accepted: 2 from API_KEYS (plain), 1 from API_KEY_HASHES (hashed)",
			"WARN SIMULATE=1: webhooks go only to loopback and private addresses",
			"INFO SIMULATE=1: RunPod and the Hugging Face Hub are simulated on this machine; nothing leaves this machine and its private networks",
		}},
		{"simulate, public webhooks", map[string]string{"SIMULATE": "1", "WEBHOOK_ALLOW_PUBLIC": "1", "API_KEYS": "k1"}, []string{
			"INFO data lives in /",
			"INFO API keys accepted: 1 from API_KEYS (plain)",
			"WARN SIMULATE=1 with WEBHOOK_ALLOW_PUBLIC=1: webhooks may go to loopback and private addresses",
			"INFO SIMULATE=1: RunPod and the Hugging Face Hub are simulated on this machine; nothing leaves this machine but the webhooks you ask for",
		}},
		{"private webhooks", map[string]string{"WEBHOOK_ALLOW_PRIVATE": "1", "API_KEY_HASHES": "bob:" + strings.Repeat("a", 64)}, []string{
			"INFO data lives in /",
			"INFO API keys accepted: 0 from API_KEYS (plain), 1 from API_KEY_HASHES (hashed)",
			"WARN WEBHOOK_ALLOW_PRIVATE=1: webhooks may go to loopback and private addresses",
			"INFO RunPod",
		}},
		{"emulators", map[string]string{"BACKEND": "gcp", "GCP_PROJECT_ID": "demo", "PROVISION_TASK_URL": "http://127.0.0.1:1/",
			"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8911", "CLOUD_TASKS_EMULATOR_HOST": "127.0.0.1:8123", "API_KEYS": "k"}, []string{
			"INFO data lives in the Firestore emulator at 127.0.0.1:8911 (project demo); provisioning steps go through the Cloud Tasks queue provision on the emulator at 127.0.0.1:8123",
			"INFO API keys accepted: 1 from API_KEYS",
			"INFO RunPod",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			cfg, err := config.Load(getenv)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			LogStartup(context.Background(), slog.New(slog.NewJSONHandler(&buf, nil)), cfg)
			var got []string
			for _, b := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
				var l struct{ Level, Msg string }
				if err := json.Unmarshal(b, &l); err != nil {
					t.Fatal(err)
				}
				got = append(got, l.Level+" "+l.Msg)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				level, sub, _ := strings.Cut(w, " ")
				if !strings.HasPrefix(got[i], level+" ") || !strings.Contains(got[i], sub) {
					t.Errorf("line %d = %q, want %s containing %q", i, got[i], level, sub)
				}
			}
		})
	}
}
