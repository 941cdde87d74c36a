package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/visgate/deployment-orchestrator/shared/config"
)

// LogStartup tells the operator, once per process that serves (once for all
// of make dev's function processes), what this configuration means: where
// the data lives, which API keys are accepted, whether webhooks may go to
// private addresses, and whether RunPod and the Hub are real (the internet
// is needed) or simulated.
func LogStartup(ctx context.Context, log *slog.Logger, cfg *config.Config) {
	switch cfg.Backend {
	case config.BackendEmbedded:
		dir, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			dir = cfg.DataDir
		}
		log.InfoContext(ctx, "data lives in "+dir+" (deployments in orchestrator.db, the keys that seal their secrets and sign webhooks beside it); `make clean` deletes it",
			"data_dir", dir)
	case config.BackendGCP:
		where := "Google Cloud project " + cfg.ProjectID
		if h := cfg.FirestoreEmulatorHost; h != "" {
			where = "the Firestore emulator at " + h + " (project " + cfg.ProjectID + ")"
		}
		queue := "Cloud Tasks queue " + cfg.TasksQueue
		if h := cfg.CloudTasksEmulatorHost; h != "" {
			queue += " on the emulator at " + h
		}
		log.InfoContext(ctx, "data lives in "+where+"; provisioning steps go through the "+queue,
			"project", cfg.ProjectID, "queue", cfg.TasksQueue)
	}

	plain, hashed := count(cfg.APIKeys), count(cfg.APIKeyHashes)
	if cfg.DefaultKeyUsed {
		log.WarnContext(ctx, "API_KEYS and API_KEY_HASHES are unset: accepting the test key "+config.DefaultAPIKey+"; never do this in production",
			"api_keys", 1)
	} else {
		log.InfoContext(ctx, "API keys accepted: "+strconv.Itoa(plain)+" from API_KEYS (plain), "+strconv.Itoa(hashed)+" from API_KEY_HASHES (hashed)",
			"api_keys", plain+hashed)
	}

	switch {
	case cfg.WebhookPrivateOnly:
		why := "WEBHOOK_ALLOW_PUBLIC=0"
		if cfg.Simulate {
			why = "SIMULATE=1"
		}
		log.WarnContext(ctx, why+": webhooks go only to loopback and private addresses (by address, or localhost), over plain http too; WEBHOOK_ALLOW_PUBLIC=1 lets them reach public hosts")
	case cfg.WebhookAllowPrivate:
		why := "WEBHOOK_ALLOW_PRIVATE=1"
		if cfg.Simulate {
			why = "SIMULATE=1 with WEBHOOK_ALLOW_PUBLIC=1"
		}
		log.WarnContext(ctx, why+": webhooks may go to loopback and private addresses over plain http; for local runs only")
	}

	if cfg.Simulate {
		what := "nothing leaves this machine and its private networks"
		if !cfg.WebhookPrivateOnly {
			what = "nothing leaves this machine but the webhooks you ask for"
		}
		log.InfoContext(ctx, "SIMULATE=1: RunPod and the Hugging Face Hub are simulated on this machine; "+what)
	} else {
		log.InfoContext(ctx, "RunPod ("+cfg.RunPodAPIURL+") and the Hugging Face Hub ("+cfg.HFAPIURL+") are real: deployments need the internet and a real RunPod key (SIMULATE=1 runs offline)",
			"runpod", cfg.RunPodAPIURL, "hub", cfg.HFAPIURL)
	}
}

// count returns the number of non-empty comma-separated entries in s.
func count(s string) int {
	n := 0
	for _, e := range strings.Split(s, ",") {
		if strings.TrimSpace(e) != "" {
			n++
		}
	}
	return n
}
