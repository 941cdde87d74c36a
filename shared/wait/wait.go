// Package wait is how tests wait for something to happen: one polling
// helper, so that every test waits the same way and none waits by sleeping
// a guessed duration. Waiting for something NOT to happen cannot be done
// by polling; use testing/synctest (the code under test on the bubble's
// clock) or wait for an event that proves it can no longer happen.
package wait

import (
	"testing"
	"time"
)

// Until polls cond, first after 1 ms and then at most every 20 ms, until
// it holds; after timeout it fails t with what, and with what detail
// returns when detail is not nil (the state that was seen last). Inside a
// testing/synctest bubble the polling runs on the bubble's clock.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			msg := "timed out after " + timeout.String() + " waiting for " + what
			for _, d := range detail {
				msg += "\n" + d()
			}
			t.Fatal(msg)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}
