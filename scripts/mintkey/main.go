// Command mintkey makes a new API key for the Deployment Orchestrator.
//
//	go run ./scripts/mintkey [-owner NAME]
//
// It prints the key once (it is stored nowhere, only its hash is), the
// "owner:hash" entry to add to API_KEY_HASHES, and, when WEBHOOK_SIGNING_KEY
// is set, the owner's webhook signing secret (whsec_...) that their receivers
// verify signatures with. Without -owner the owner id is derived from the key,
// as for keys given in API_KEYS.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/visgate/deployment-orchestrator/shared/auth"
	"github.com/visgate/deployment-orchestrator/shared/secret"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func realMain(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mintkey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	owner := fs.String("owner", "", "owner id to bind the key to (ASCII letters, digits, '_', '-', '.'); derived from the key when empty")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mintkey: unexpected arguments: %q\n", fs.Args())
		return 2
	}
	if *owner != "" {
		if err := auth.ValidateOwner(*owner); err != nil {
			fmt.Fprintf(stderr, "mintkey: -owner: %v\n", err)
			return 2
		}
	}

	key, hash := auth.Mint()
	if *owner == "" {
		*owner = auth.OwnerForHash(hash)
	}
	fmt.Fprintln(stdout, "API key (shown only this once; give it to the client and keep no copy):")
	fmt.Fprintf(stdout, "  %s\n", key.Reveal())
	fmt.Fprintln(stdout, "Entry for API_KEY_HASHES (comma-separated with the others):")
	fmt.Fprintf(stdout, "  %s:%s\n", *owner, hash)
	if master := getenv("WEBHOOK_SIGNING_KEY"); master != "" {
		whsec := webhook.OwnerSecret(secret.New(master), *owner)
		fmt.Fprintf(stdout, "Webhook signing secret of %s (for their receivers to verify webhook-signature):\n", *owner)
		fmt.Fprintf(stdout, "  %s\n", whsec.Reveal())
	} else {
		fmt.Fprintln(stdout, "Webhook signing secret: the key's holder gets it from GET /v1/webhook-secret.")
		fmt.Fprintln(stdout, "(To print it here too, run with WEBHOOK_SIGNING_KEY set to the server's value.)")
	}
	return 0
}
