package webhook

import "time"

// schedule holds the delay before each delivery attempt, counted from the end
// of the previous one: the first attempt goes at once, then 5 s, 30 s, 2 min,
// 10 min and 30 min later. Six attempts over about 43 minutes (plus the
// attempts' own time, each at most Options.Timeout); after the last failure
// the deployment becomes webhook_failed.
var schedule = [...]time.Duration{
	0,
	5 * time.Second,
	30 * time.Second,
	2 * time.Minute,
	10 * time.Minute,
	30 * time.Minute,
}

// Schedule returns the delay before each attempt (a fresh copy): element i is
// the wait before attempt i+1, measured from the end of attempt i. Its length
// is the total number of attempts.
func Schedule() []time.Duration {
	s := schedule
	return s[:]
}

// NextDelay says whether to try again after `attempts` attempts ended with
// last, and how long to wait: the scheduled delay, or the receiver's
// Retry-After when that is longer. ok is false when last was delivered, is
// not retryable, or the schedule is used up.
func NextDelay(attempts int, last Result) (delay time.Duration, ok bool) {
	if last.Delivered || !last.Retryable || attempts < 1 || attempts >= len(schedule) {
		return 0, false
	}
	return max(schedule[attempts], last.RetryAfter), true
}
