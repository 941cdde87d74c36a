package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
)

var timeType = reflect.TypeFor[time.Time]()

// Filled returns a deployment with every field set to a non-zero value
// (Populated's), found by reflection: a field added to deployment.Deployment
// later is covered without touching this package, so a store that forgets
// to persist it fails the round trip. Times carry nanoseconds (stores may
// round them). ID, Owner, Status (downloading_model), StatusChangedAt and
// CreatedAt are set from the arguments.
func Filled(t testing.TB, id, owner string, createdAt time.Time) *deployment.Deployment {
	t.Helper()
	d := Populated()
	d.ID = id
	d.Owner = owner
	d.Status = deployment.StatusDownloadingModel
	d.StatusChangedAt = createdAt.UTC().Add(2 * time.Second)
	d.CreatedAt = createdAt.UTC()
	for i := range d.Logs {
		d.Logs[i].Level = deployment.LevelInfo
	}
	return d
}
