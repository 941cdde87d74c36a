package wait

import (
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeT records Fatal instead of stopping the test.
type fakeT struct {
	testing.TB
	fatal string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatal(args ...any) {
	f.fatal = args[0].(string)
	panic(f) // Fatal does not return
}

func run(f *fakeT, fn func()) {
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
	}()
	fn()
}

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		start := time.Now()
		f := &fakeT{TB: t}
		run(f, func() { Until(f, time.Minute, "three polls", func() bool { return n.Add(1) == 3 }) })
		if f.fatal != "" {
			t.Fatalf("failed: %s", f.fatal)
		}
		if n.Load() != 3 {
			t.Errorf("polled %d times, want 3", n.Load())
		}
		// 1 ms then 2 ms between the polls.
		if got := time.Since(start); got != 3*time.Millisecond {
			t.Errorf("took %s on the bubble's clock, want 3ms", got)
		}
	})
}

func TestUntilFailsAfterTheTimeoutWithTheDetail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		f := &fakeT{TB: t}
		run(f, func() {
			Until(f, time.Second, "the impossible", func() bool { return false }, func() string { return "last seen: nothing" })
		})
		if !strings.Contains(f.fatal, "timed out after 1s waiting for the impossible") || !strings.HasSuffix(f.fatal, "\nlast seen: nothing") {
			t.Errorf("fatal = %q", f.fatal)
		}
		if got := time.Since(start); got < time.Second || got > time.Second+20*time.Millisecond {
			t.Errorf("gave up after %s, want just over 1s", got)
		}
	})
}
