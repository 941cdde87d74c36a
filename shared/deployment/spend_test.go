package deployment

import (
	"strings"
	"testing"
	"time"
)

func spendFixture(now time.Time) *Deployment {
	d := &Deployment{
		ID:              "dep_2026_0000beef",
		Status:          StatusReady,
		StatusChangedAt: now.Add(-time.Hour),
		ReadyAt:         now.Add(-time.Hour),
		Price:           NewPrice("AMPERE_48", 1.8, 2.5, time.Time{}),
		Watch:           Watch{StartedAt: now.Add(-90 * time.Minute)},
		Limits:          Limits{MaxSpendUSD: 100},
		Request:         Request{Scaling: Scaling{MinWorkers: 1, MaxWorkers: 2, IdleTimeoutSeconds: 60}},
		Endpoint:        Endpoint{RunPodEndpointID: "ep1"},
	}
	return d
}

// Issue 23, item 6: one bogus record ($1e308) must not delete a deployment.
func TestRecordSpendRefusesAnImplausibleFigure(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	d := spendFixture(now)
	if err := d.RecordSpend(now, SpendRead{USD: 1e308, Since: d.Watch.StartedAt.Truncate(time.Hour), BucketSeconds: 3600}); err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusReady {
		t.Fatalf("status %s after a $1e308 record: want it refused, the deployment kept", d.Status)
	}
	if d.Spend.LastError == "" || !strings.Contains(d.Spend.LastError, "not plausible") || !d.Spend.ReadAt.IsZero() {
		t.Errorf("spend %+v: want the figure refused with a reason", d.Spend)
	}
	// A plausible figure over the limit deletes it.
	if err := d.RecordSpend(now, SpendRead{USD: 120, Since: d.Watch.StartedAt.Truncate(time.Hour), BucketSeconds: 3600}); err == nil && d.Status != StatusReady {
		t.Errorf("$120 against a ceiling of 2 workers at $2.50 for 3 hours ($30) was believed: status %s", d.Status)
	}
	if err := d.RecordSpend(now, SpendRead{USD: 25, Since: d.Watch.StartedAt.Truncate(time.Hour), BucketSeconds: 3600}); err != nil {
		t.Fatal(err)
	}
	if d.Spend.USD != 25 || d.Spend.LastError != "" || !d.Spend.FailingSince.IsZero() {
		t.Errorf("spend %+v after a good read", d.Spend)
	}
}

// Issue 23, item 6: while no billing read has succeeded, GET shows an
// estimate saying it is one, with the last error and since when; a failing
// billing read does not leave the limit unenforced once the estimate (a
// lower bound) passes it.
func TestSpendVisibleWhileTheBillingFails(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	d := spendFixture(now)
	failed := now.Add(-10 * time.Minute)
	if err := d.RecordSpend(failed, SpendRead{Err: "RunPod did not answer in time"}); err != nil {
		t.Fatal(err)
	}
	if err := d.RecordSpend(now, SpendRead{Err: "RunPod did not answer in time"}); err != nil {
		t.Fatal(err)
	}
	p := d.PublicAt(now, false).Spend
	if p == nil {
		t.Fatal("spend is null while the billing cannot be read")
	}
	// 30 min of one loading worker, then 60 min of min_workers (1), at $1.80 an hour.
	if p.Source != SpendSourceEstimate || p.USD != 2.7 || p.ReadAt != nil {
		t.Errorf("spend %+v: want the estimate $2.70, said to be one", *p)
	}
	if p.LastError == nil || *p.LastError != "RunPod did not answer in time" || p.FailingSince == nil || !p.FailingSince.Equal(failed) {
		t.Errorf("spend %+v: want the last error and since when", *p)
	}
	if !strings.Contains(p.Note, "Estimate") {
		t.Errorf("note %q does not say it is an estimate", p.Note)
	}
	if n := strings.Count(logLines(d), "Could not read the endpoint's spend"); n != 1 {
		t.Errorf("%d log lines for one reason, want 1", n)
	}
	d.Limits.MaxSpendUSD = 2.5
	if err := d.RecordSpend(now, SpendRead{Err: "RunPod did not answer in time"}); err != nil {
		t.Fatal(err)
	}
	if d.Status != StatusDeleted || d.DeletedReason != ReasonMaxSpend {
		t.Errorf("status %s (%s): the estimate $2.70 passed the limit $2.50 while the billing failed", d.Status, d.DeletedReason)
	}
}

func logLines(d *Deployment) string {
	var b strings.Builder
	for _, l := range d.Logs {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}
