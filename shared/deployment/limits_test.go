package deployment

import (
	"fmt"
	"testing"
	"time"
)

// TestNextSpendRead: the next read is one interval later give or take a
// tenth, the same for every copy of a read, and spread across deployments
// and reads (so that reads due together do not stay bunched).
func TestNextSpendRead(t *testing.T) {
	read := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	const interval = 5 * time.Minute
	seen := map[time.Time]bool{}
	for i := range 200 {
		d := &Deployment{}
		d.ID = fmt.Sprintf("dep-%03d", i)
		d.Spend.Reads = i % 7
		next := d.NextSpendRead(read, interval)
		if wait := next.Sub(read); wait < interval-interval/10 || wait >= interval+interval/10 {
			t.Fatalf("%s, read %d: next read %v after, want within a tenth of %v", d.ID, d.Spend.Reads, wait, interval)
		}
		if again := d.NextSpendRead(read, interval); !again.Equal(next) {
			t.Fatalf("%s: two copies of a read disagree: %v and %v", d.ID, next, again)
		}
		seen[next] = true
	}
	if len(seen) < 150 {
		t.Errorf("200 deployments' next reads fall on %d distinct times: not spread", len(seen))
	}
}
