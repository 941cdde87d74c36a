package deployment

import (
	"fmt"
	"slices"
	"time"
)

// Report is what the inference worker said of itself (its callback, once
// validated): its phase, and with it the download's bytes, the timings of
// its start, or the reason it failed.
type Report struct {
	// Status is downloading_model, loading_model, ready or failed.
	Status Status
	// Error is why the worker failed (with failed).
	Error string
	// Message is a free line from the worker, logged with a status change.
	Message string
	// BytesDone of BytesTotal were downloaded (with downloading_model;
	// BytesDone <= BytesTotal).
	BytesDone, BytesTotal int64
	// Timings of the start (with ready), or nil.
	Timings *Timings
}

// ReportedStatuses are the statuses a worker may report, in lifecycle order.
var ReportedStatuses = []Status{StatusDownloadingModel, StatusLoadingModel, StatusReady, StatusFailed}

// Reported reports whether s is a status a worker may report.
func (s Status) Reported() bool { return slices.Contains(ReportedStatuses, s) }

// Timings are the seconds the worker's start took, reported with ready.
type Timings struct {
	Download, Load, Warmup float64
}

// ReportEffect says what applying a Report did to the record.
type ReportEffect int

// The effects of a report.
const (
	// ReportIgnored: nothing changed (late, duplicated, out of order, or a
	// progress report too soon after the last one written): no write.
	ReportIgnored ReportEffect = iota
	// ReportProgress: the download's progress moved; the status did not.
	ReportProgress
	// ReportParked: the report came before the endpoint was recorded; it is
	// kept in Progress and the watch step takes it from there (Poll).
	ReportParked
	// ReportMoved: the status changed to the reported one.
	ReportMoved
)

// ProgressWriteInterval is how often, at most, a deployment's download
// progress is written (each write is a store write and, in the cloud, a
// change event); the report that completes the download always is.
const ProgressWriteInterval = 5 * time.Second

// ApplyReport applies the inference worker's report r, received at now, and
// says what it did. A report for a deployment past it (ready, failed,
// deleted) changes nothing; one that arrives before the endpoint is
// recorded is parked (the watch step moves on once the endpoint is); a
// download report only moves the bytes, forwards, at most every
// ProgressWriteInterval (but the one that completes the download). The
// error is a *TransitionError should a transition be refused.
func (d *Deployment) ApplyReport(now time.Time, r Report) (ReportEffect, error) {
	reported := r.Status
	if d.Status == reported && reported == StatusDownloadingModel {
		// The chain enters downloading_model when the endpoint exists; the
		// container's reports move the bytes, and the first one is worth a
		// log line.
		if d.Watch.DownloadReported {
			complete := r.BytesTotal > 0 && r.BytesDone == r.BytesTotal
			if !downloadAdvances(d.Progress, r.BytesDone, r.BytesTotal) ||
				(!complete && now.Sub(d.Progress.UpdatedAt) < ProgressWriteInterval) {
				return ReportIgnored, nil
			}
		} else {
			d.Watch.DownloadReported = true
			d.Log(now, LevelInfo, "Downloading model%s", sizeNote(r.BytesTotal))
		}
		d.Progress = downloadProgress(d.Progress, r.BytesDone, r.BytesTotal, now)
		return ReportProgress, nil
	}
	if !d.Status.CanTransition(reported) || !d.Status.Provisioning() {
		return ReportIgnored, nil // late, duplicated or out of order: keep what we know
	}
	if d.RunPodEndpointID == "" && reported != StatusFailed {
		// The container outran create_endpoint's record of its endpoint:
		// moving on now would announce a ready deployment without its
		// endpoint. Note it and keep the report; the watch step takes it
		// from here once the endpoint is recorded.
		d.Log(now, LevelInfo, "Inference container reported %s before the endpoint was recorded", reported)
		if d.Progress.Phase == "" || d.Progress.Phase.CanTransition(reported) {
			d.Progress.Phase, d.Progress.UpdatedAt = reported, now
			if reported == StatusDownloadingModel {
				d.Progress = downloadProgress(d.Progress, r.BytesDone, r.BytesTotal, now)
			}
			if r.Timings != nil {
				d.Progress.DownloadSeconds, d.Progress.LoadSeconds, d.Progress.WarmupSeconds = r.Timings.Download, r.Timings.Load, r.Timings.Warmup
			}
		}
		return ReportParked, nil
	}
	switch reported {
	case StatusFailed:
		msg := r.Error
		if msg == "" {
			msg = "no reason given"
		}
		if err := d.Fail(now, "Inference container reported a failure: "+msg); err != nil {
			return ReportIgnored, err
		}
		return ReportMoved, nil
	case StatusReady:
		d.Progress.Phase = reported
		d.Progress.UpdatedAt = now
		if t := r.Timings; t != nil {
			d.Progress.DownloadSeconds, d.Progress.LoadSeconds, d.Progress.WarmupSeconds = t.Download, t.Load, t.Warmup
			d.Log(now, LevelInfo, "Inference container reported the model ready (download %.1f s, load %.1f s, warm-up inference %.1f s)",
				t.Download, t.Load, t.Warmup)
		} else {
			d.Log(now, LevelInfo, "Inference container reported the model loaded")
		}
	case StatusDownloadingModel:
		d.Watch.DownloadReported = true
		d.Progress = downloadProgress(d.Progress, r.BytesDone, r.BytesTotal, now)
		d.Log(now, LevelInfo, "Downloading model%s", sizeNote(r.BytesTotal))
	case StatusLoadingModel:
		d.Progress.Phase = reported
		d.Progress.UpdatedAt = now
		if d.Progress.BytesTotal > 0 {
			d.Progress.BytesDone = d.Progress.BytesTotal
		}
		d.Log(now, LevelInfo, "Loading model into GPU memory")
	}
	if r.Message != "" {
		d.Log(now, LevelInfo, "Container: %s", r.Message)
	}
	if err := d.Transition(now, reported); err != nil {
		return ReportIgnored, err
	}
	return ReportMoved, nil
}

// downloadAdvances reports whether a download report of done of total bytes
// moves p on: the bytes never go back (a worker that starts over, or a
// report that arrives late, changes nothing) and an unchanged report is no
// news.
func downloadAdvances(p Progress, done, total int64) bool {
	if done < p.BytesDone {
		return false
	}
	return p.Phase != StatusDownloadingModel || done != p.BytesDone || total != p.BytesTotal
}

// downloadProgress is p after a download report of done of total bytes
// (validated: done <= total), keeping the bytes monotonic.
func downloadProgress(p Progress, done, total int64, now time.Time) Progress {
	if done < p.BytesDone {
		done, total = p.BytesDone, max(p.BytesTotal, p.BytesDone)
	}
	return Progress{Phase: StatusDownloadingModel, BytesDone: done, BytesTotal: total, UpdatedAt: now}
}

// sizeNote is " (1.2 GB)" for a known download size.
func sizeNote(total int64) string {
	if total <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%s)", humanBytes(total))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}
