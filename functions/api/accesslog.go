package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// ReadSummaryInterval is how often, at most, the log gets a line counting
// the reads it did not show one by one.
const ReadSummaryInterval = time.Minute

// readCounter counts the successful reads (GET and HEAD answered below 400)
// since the last summary line. The zero value is ready to use.
type readCounter struct {
	n    atomic.Int64
	last atomic.Int64 // when the last summary was due (Unix nanoseconds); 0 before the first read
}

// logRequest writes the request's log line. A successful read, which
// callers poll (GET while they wait for ready), is logged at DEBUG and
// counted; every ReadSummaryInterval one INFO line says how many there
// were. Everything else (writes, errors) keeps its INFO line. Under make
// bench's GET load the INFO line of every read was about a tenth of the
// server's CPU and a contended lock (the log's).
func (s *Server) logRequest(ctx context.Context, r *http.Request, status int, start time.Time) {
	log := s.logger()
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && status < 400 {
		s.reads.count(log, s.now())
		if !log.Enabled(ctx, slog.LevelDebug) {
			return
		}
		log.LogAttrs(ctx, slog.LevelDebug, "request", requestAttrs(r, status, start)...)
		return
	}
	log.LogAttrs(ctx, slog.LevelInfo, "request", requestAttrs(r, status, start)...)
}

func requestAttrs(r *http.Request, status int, start time.Time) []slog.Attr {
	return []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)}
}

// count counts one read, and logs the summary when it is due: the first
// read after ReadSummaryInterval has passed since the last one was due
// writes it (no timer runs: an idle server logs nothing).
func (c *readCounter) count(log *slog.Logger, now time.Time) {
	c.n.Add(1)
	t := now.UnixNano()
	last := c.last.Load()
	if last == 0 {
		c.last.CompareAndSwap(0, t)
		return
	}
	if t-last < int64(ReadSummaryInterval) || !c.last.CompareAndSwap(last, t) {
		return
	}
	n := c.n.Swap(0)
	log.LogAttrs(context.Background(), slog.LevelInfo, "reads served", slog.Int64("count", n),
		slog.Float64("seconds", time.Duration(t-last).Seconds()),
		slog.String("note", "successful GET and HEAD requests, each logged at debug level (LOG_LEVEL=debug)"))
}
