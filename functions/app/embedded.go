package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/seal"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/store/bolt"
)

// keysetSample is how many of the newest deployments the keyset check
// tries to open.
const keysetSample = 20

// openKeyset opens the local keyset at path for the data in st, and refuses
// (rather than making a new key, or serving data it cannot open) when the
// two do not belong together: in-flight deployments would hang for ever,
// and their endpoints could not be deleted without the RunPod keys.
func openKeyset(ctx context.Context, st *bolt.Store, path string) (seal.Sealer, error) {
	sample, _, err := st.List(ctx, store.ListQuery{Limit: keysetSample})
	if err != nil {
		return nil, fmt.Errorf("local keyset: reading the store: %w", err)
	}
	hasData := len(sample) > 0 || len(st.Unreadable()) > 0
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && hasData {
		return nil, fmt.Errorf("local keyset: %s is missing, but the store holds deployments sealed with it: restore it from "+
			"the backup made with orchestrator.db (see docs/operations.md, Backup and recovery); a new key could not open their "+
			"RunPod keys, so their endpoints could not be deleted", path)
	}
	sealer, err := seal.LocalKeyset(path)
	if err != nil {
		return nil, fmt.Errorf("local keyset: %w", err)
	}
	tried := 0
	for _, d := range sample {
		if len(d.RunPodKey) == 0 {
			continue
		}
		tried++
		if _, err := sealer.Open(ctx, d.RunPodKey, deployment.AssociatedData(d.ID, deployment.FieldRunPodKey)); err == nil {
			return sealer, nil
		}
	}
	if tried > 0 {
		return nil, fmt.Errorf("local keyset: %s does not belong to the store: none of the %d newest deployments' secrets "+
			"opens with it; restore the keyset.json from the backup made with this orchestrator.db (see docs/operations.md, Backup and recovery)", path, tried)
	}
	return sealer, nil
}
