package main

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
)

// shower shows a deployment's events as they come.
type shower interface {
	phase(status string)
	log(l logEntry)
	download(done, total int64)
	done()
}

type nopShower struct{}

func (nopShower) phase(string)          {}
func (nopShower) log(logEntry)          {}
func (nopShower) download(int64, int64) {}
func (nopShower) done()                 {}

// lineShower writes one line per event, for a stdout that is not a
// terminal: no bar, no colour, no carriage return.
type lineShower struct {
	a        *app
	lastDone int64
}

func (s *lineShower) phase(status string) {
	fmt.Fprintf(s.a.out, "status %s\n", status)
}

func (s *lineShower) log(l logEntry) {
	fmt.Fprintf(s.a.out, "log %s %s %s\n", l.Timestamp.UTC().Format(time.RFC3339), l.Level, l.Message)
}

func (s *lineShower) download(done, total int64) {
	if done == s.lastDone {
		return
	}
	s.lastDone = done
	fmt.Fprintf(s.a.out, "download %d/%d bytes (%d%%)\n", done, total, percent(done, total))
}

func (s *lineShower) done() {}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 0
	}
	return done * 100 / total
}

// ttyShower draws phases as lines and the download as a progress bar with
// bytes, rate and time left (github.com/schollz/progressbar).
type ttyShower struct {
	a     *app
	bar   *progressbar.ProgressBar
	since time.Time
	last  string
}

func newTTYShower(a *app) *ttyShower { return &ttyShower{a: a, since: time.Now()} }

func (s *ttyShower) phase(status string) {
	s.finishBar()
	mark := s.a.paint("36", "›")
	switch status {
	case "ready", "webhook_failed":
		mark = s.a.paint("32", "✓")
	case "failed", "deleted":
		mark = s.a.paint("31", "✗")
	}
	fmt.Fprintf(s.a.out, "%s %-18s %s\n", mark, status, s.a.paint("2", time.Since(s.since).Round(100*time.Millisecond).String()))
	s.last = status
}

// log lines are shown dimmed under their phase, bar permitting.
func (s *ttyShower) log(l logEntry) {
	if s.bar != nil {
		return // the bar owns the line; the phase lines carry the story
	}
	fmt.Fprintf(s.a.out, "  %s\n", s.a.paint("2", l.Message))
}

func (s *ttyShower) download(done, total int64) {
	if s.bar == nil {
		s.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(s.a.out),
			progressbar.OptionSetDescription("  downloading"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(0),
			progressbar.OptionEnableColorCodes(s.a.color),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	if total != s.bar.GetMax64() {
		s.bar.ChangeMax64(total)
	}
	_ = s.bar.Set64(done)
}

func (s *ttyShower) finishBar() {
	if s.bar == nil {
		return
	}
	if !s.bar.IsFinished() {
		_ = s.bar.Exit()
	}
	fmt.Fprintln(s.a.out)
	s.bar = nil
}

func (s *ttyShower) done() { s.finishBar() }
