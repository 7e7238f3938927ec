package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/upstream"
)

// Access log modes, as operators use them in HAProxy.
const (
	LogOff    = "off"    // no access log
	LogAll    = "all"    // every request
	LogErrors = "errors" // status >= 500 and failures (499) only
	LogSample = "sample" // errors, plus 1 in SampleN of the rest
)

// AccessLogConfig configures the access log. The zero value logs nothing.
type AccessLogConfig struct {
	// Mode is LogOff (also ""), LogAll, LogErrors or LogSample.
	Mode string
	// SampleN keeps 1 in SampleN non-error requests in LogSample mode.
	// Zero means 100.
	SampleN int
	// JSON writes one JSON object per line; otherwise compact key=value.
	JSON bool
	// Out receives the lines. Nil means os.Stdout's equivalent must be
	// passed by the caller; a nil Out turns logging off.
	Out io.Writer
}

// AccessLog writes one structured line per request.
type AccessLog struct {
	cfg AccessLogConfig
	log *slog.Logger
	n   atomic.Uint64
}

// NewAccessLog returns nil (no logging) for mode off.
func NewAccessLog(cfg AccessLogConfig) (*AccessLog, error) {
	switch cfg.Mode {
	case "", LogOff:
		return nil, nil
	case LogAll, LogErrors, LogSample:
	default:
		return nil, fmt.Errorf("access log: unknown mode %q (off, all, errors, sample)", cfg.Mode)
	}
	if cfg.Out == nil {
		return nil, nil
	}
	if cfg.SampleN <= 0 {
		cfg.SampleN = 100
	}
	opts := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
			return slog.Attr{} // every line is an access record
		}
		return a
	}}
	var h slog.Handler = slog.NewTextHandler(cfg.Out, opts)
	if cfg.JSON {
		h = slog.NewJSONHandler(cfg.Out, opts)
	}
	return &AccessLog{cfg: cfg, log: slog.New(h)}, nil
}

// wants decides after the fact whether a request is logged.
func (a *AccessLog) wants(status int) bool {
	if status >= 500 || status == StatusClientClosed {
		return true
	}
	switch a.cfg.Mode {
	case LogAll:
		return true
	case LogSample:
		return a.n.Add(1)%uint64(a.cfg.SampleN) == 0
	}
	return false
}

func (a *AccessLog) record(r *http.Request, status int, bytes int64, backend string, info *upstream.RequestInfo, d time.Duration) {
	if !a.wants(status) {
		return
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "",
		slog.String("client", r.RemoteAddr),
		slog.String("proto", r.Proto),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", bytes),
		slog.String("backend", backend),
		slog.String("server", info.Server),
		slog.String("upstream_proto", info.Protocol),
		slog.Uint64("upstream_conn", info.ConnID),
		slog.Uint64("upstream_req", info.ConnReq),
		slog.Int("attempts", info.Attempts),
		slog.Duration("queue_wait", info.QueueWait),
		slog.Duration("duration", d),
	)
}
