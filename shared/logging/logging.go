// Package logging makes the service's structured logger: one JSON line per
// event, in the shape Cloud Logging reads (severity, message, trace).
// Secrets are kept out by construction: they are secret.Secret values, which
// render as a redaction marker.
package logging

import (
	"context"
	"io"
	"log/slog"
	"strings"
)

// New returns a JSON logger writing to w at level ("debug", "info", "warn",
// "error"). projectID, when set, turns trace ids into Cloud Logging's
// projects/P/traces/T form.
func New(w io.Writer, level, projectID string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: lv,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				return slog.String("severity", severity(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				return slog.Attr{Key: "message", Value: a.Value}
			case slog.TimeKey:
				return slog.Attr{Key: "time", Value: a.Value}
			}
			return a
		},
	})
	return slog.New(&contextHandler{Handler: h, project: projectID})
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

type ctxKey int

// requestKey finds a context's requestContext.
const requestKey ctxKey = 0

// requestContext carries a request's id and trace id: one allocation per
// request, where a context.WithValue per value made two each (the value
// boxed, and its context), on every request of the API.
type requestContext struct {
	context.Context
	id, trace string
}

// Value answers requestKey with the requestContext itself (a pointer: no
// allocation); other keys are its parent's.
func (c *requestContext) Value(key any) any {
	if key == requestKey {
		return c
	}
	return c.Context.Value(key)
}

// WithRequest stores the request id and the trace header value
// (X-Cloud-Trace-Context or traceparent) in ctx; every log line made with
// that ctx carries them.
func WithRequest(ctx context.Context, requestID, traceHeader string) context.Context {
	return &requestContext{Context: ctx, id: requestID, trace: traceID(traceHeader)}
}

func requestOf(ctx context.Context) *requestContext {
	rc, _ := ctx.Value(requestKey).(*requestContext)
	return rc
}

// RequestID returns the request id WithRequest stored in ctx, or "".
func RequestID(ctx context.Context) string {
	if rc := requestOf(ctx); rc != nil {
		return rc.id
	}
	return ""
}

// traceID extracts the trace id from X-Cloud-Trace-Context ("T/S;o=1") or
// a W3C traceparent ("00-T-S-01").
func traceID(h string) string {
	if h == "" || len(h) > 256 {
		return ""
	}
	if strings.HasPrefix(h, "00-") {
		parts := strings.Split(h, "-")
		if len(parts) == 4 {
			return parts[1]
		}
		return ""
	}
	t, _, _ := strings.Cut(h, "/")
	for _, r := range t {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return ""
		}
	}
	return t
}

type contextHandler struct {
	slog.Handler
	project string
}

func (h *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	rc := requestOf(ctx)
	if rc != nil && rc.id != "" {
		r.AddAttrs(slog.String("request_id", rc.id))
	}
	if rc != nil && rc.trace != "" {
		t := rc.trace
		if h.project != "" {
			t = "projects/" + h.project + "/traces/" + t
		}
		r.AddAttrs(slog.String("logging.googleapis.com/trace", t))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &contextHandler{Handler: h.Handler.WithAttrs(attrs), project: h.project}
}

func (h *contextHandler) WithGroup(name string) slog.Handler {
	return &contextHandler{Handler: h.Handler.WithGroup(name), project: h.project}
}
