package upstream

// A server's GOAWAY as operators see it: one log line per connection and
// the code label of sluice_upstream_goaway_total.

import (
	"context"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/h2c/client"
)

// goAwayLabels are the values of sluice_upstream_goaway_total's code
// label: the lower-case names of the codes RFC 9113 defines, indexed by
// code (no_error, protocol_error, ... http_1_1_required), then "unknown"
// for any other code, so that a server sending arbitrary codes cannot grow
// the label set.
var goAwayLabels = func() []string {
	var names []string
	for code := http2.ErrCodeNo; code <= http2.ErrCodeHTTP11Required; code++ {
		names = append(names, strings.ToLower(code.String()))
	}
	return append(names, "unknown")
}()

// goAwayIndex is code's index in goAwayLabels.
func goAwayIndex(code http2.ErrCode) int {
	return int(min(int64(code), int64(len(goAwayLabels)-1)))
}

// maxGoAwayDebug bounds the debug data a GOAWAY log line shows.
const maxGoAwayDebug = 256

// logGoAway logs the first GOAWAY a connection received: WARN, or INFO
// for NO_ERROR (a graceful shutdown). The connection's age and requests
// tell a server retiring a young connection under load (Tomcat's
// PROTOCOL_ERROR on a stream id it did not expect) from one reaching its
// limits.
func (c *pconn) logGoAway(log *slog.Logger, g client.GoAway, now time.Time) {
	if log == nil {
		return
	}
	level := slog.LevelWarn
	if g.ErrCode == http2.ErrCodeNo {
		level = slog.LevelInfo
	}
	p := c.pool
	log.LogAttrs(context.Background(), level, "upstream server sent GOAWAY",
		slog.String("server", p.cfg.addr),
		slog.String("protocol", p.cfg.protocol),
		slog.String("code", g.ErrCode.String()),
		slog.Uint64("last_stream_id", uint64(g.LastStreamID)),
		slog.String("debug", printableDebug(g.DebugData)),
		slog.Uint64("upstream_conn", c.id),
		slog.Duration("age", now.Sub(c.dialStart)),
		slog.Uint64("requests", c.reqs.Load()),
	)
}

// printableDebug is GOAWAY debug data fit for a log line: at most
// maxGoAwayDebug bytes, each rune that is not printable (or not UTF-8)
// shown as '?', and "..." when cut.
func printableDebug(d []byte) string {
	cut := len(d) > maxGoAwayDebug
	if cut {
		d = d[:maxGoAwayDebug]
	}
	var sb strings.Builder
	for len(d) > 0 {
		r, n := utf8.DecodeRune(d)
		d = d[n:]
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			r = '?'
		}
		sb.WriteRune(r)
	}
	if cut {
		sb.WriteString("...")
	}
	return sb.String()
}
