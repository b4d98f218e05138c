package media

import (
	"context"
	"log/slog"

	expslog "golang.org/x/exp/slog"
)

// tusdLogger hands tusd (which logs through golang.org/x/exp/slog, a type
// of its own) a logger that forwards its warnings and errors to log and
// drops its per-request INFO lines.
func tusdLogger(log *slog.Logger) *expslog.Logger {
	return expslog.New(tusdHandler{log: log})
}

type tusdHandler struct {
	log   *slog.Logger
	attrs []any
}

func (h tusdHandler) Enabled(_ context.Context, l expslog.Level) bool {
	return l >= expslog.LevelWarn
}

func (h tusdHandler) Handle(ctx context.Context, r expslog.Record) error {
	args := append([]any(nil), h.attrs...)
	r.Attrs(func(a expslog.Attr) bool {
		args = append(args, a.Key, a.Value.Any())
		return true
	})
	h.log.Log(ctx, slog.Level(r.Level), "media: tusd: "+r.Message, args...)
	return nil
}

func (h tusdHandler) WithAttrs(attrs []expslog.Attr) expslog.Handler {
	h.attrs = append([]any(nil), h.attrs...)
	for _, a := range attrs {
		h.attrs = append(h.attrs, a.Key, a.Value.Any())
	}
	return h
}

// WithGroup is not used by tusd; groups are flattened.
func (h tusdHandler) WithGroup(string) expslog.Handler { return h }
