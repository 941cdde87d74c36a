// Package storelog makes the server log tell each deployment's story: a
// store wrapper that, once a write is committed, emits every entry the write
// added to the deployment's own log (what GET shows its owner) to the server
// log, once, at the entry's level, with the deployment's id and status.
//
// Logging where the write commits, rather than where the entry is made,
// means an update function that runs more than once (a retried transaction)
// or aborts logs nothing twice and nothing that was not stored.
package storelog

import (
	"context"
	"log/slog"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/store"
)

// Store is what the service keeps deployments in.
type Store interface {
	store.Store
	store.IdempotencyStore
}

// detailKey is the context key of WithDetail's attributes.
type detailKey struct{}

// WithDetail returns ctx carrying attrs for the server log only: the entries
// a write made with ctx adds are logged with them. It is how an operator
// gets the detail (an error's full text, an address) of what the owner sees
// as a sentence, on the same line.
func WithDetail(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(detailKey{}).([]slog.Attr)
	return context.WithValue(ctx, detailKey{}, append(prev[:len(prev):len(prev)], attrs...))
}

// New returns s, logging each committed deployment log entry to log.
func New(s Store, log *slog.Logger) Store { return &logged{Store: s, log: log} }

type logged struct {
	Store
	log *slog.Logger
}

// View reads through the wrapped store's View when it has one (a read
// logs nothing).
func (l *logged) View(ctx context.Context, id string, fn func(d *deployment.Deployment) error) error {
	return store.View(ctx, l.Store, id, fn)
}

func (l *logged) Create(ctx context.Context, d *deployment.Deployment) error {
	if err := l.Store.Create(ctx, d); err != nil {
		return err
	}
	l.emit(ctx, d, "", d.Logs, slog.String("owner", d.Owner), slog.String("model", d.RequestedModel))
	return nil
}

func (l *logged) Update(ctx context.Context, id string, fn store.UpdateFunc) (*deployment.Deployment, error) {
	var (
		from  deployment.Status
		added []deployment.LogEntry
	)
	d, err := l.Store.Update(ctx, id, func(d *deployment.Deployment) error {
		from = d.Status
		var last *deployment.LogEntry
		if n := len(d.Logs); n > 0 {
			e := d.Logs[n-1] // a copy: trimming may reuse the array
			last = &e
		}
		err := fn(d)
		added = After(d.Logs, last)
		return err
	})
	if err != nil {
		return d, err
	}
	l.emit(ctx, d, from, added)
	return d, nil
}

// After returns the entries of logs that follow last (all of them when last
// is nil, or when last is no longer there: a write added more entries than
// a deployment keeps).
func After(logs []deployment.LogEntry, last *deployment.LogEntry) []deployment.LogEntry {
	if last == nil {
		return logs
	}
	for i := len(logs) - 1; i >= 0; i-- {
		e := logs[i]
		if e.Level == last.Level && e.Message == last.Message && e.Timestamp.Equal(last.Timestamp) {
			return logs[i+1:]
		}
	}
	return logs
}

func (l *logged) emit(ctx context.Context, d *deployment.Deployment, from deployment.Status, entries []deployment.LogEntry, extra ...slog.Attr) {
	detail, _ := ctx.Value(detailKey{}).([]slog.Attr)
	for i, e := range entries {
		attrs := []slog.Attr{slog.String("deployment_id", d.ID), slog.String("status", string(d.Status))}
		if i == 0 && from != "" && from != d.Status {
			attrs = append(attrs, slog.String("from", string(from)))
		}
		if i == 0 {
			attrs = append(attrs, extra...)
		}
		attrs = append(attrs, detail...)
		l.log.LogAttrs(ctx, Level(e.Level), e.Message, attrs...)
	}
}

// Level is the server log level of a deployment log level.
func Level(l deployment.Level) slog.Level {
	switch l {
	case deployment.LevelWarn:
		return slog.LevelWarn
	case deployment.LevelError:
		return slog.LevelError
	}
	return slog.LevelInfo
}
