package gateway

import (
	"encoding/binary"
	"time"
)

// HTTP/2 rapid reset (CVE-2023-44487): a client opens streams and resets
// them at once, so the server does work for every one and answers none. Go's
// server bounds the handlers it runs but closes such a connection only once
// its queue of pending handlers overflows: 1–3 s here. Counting the reset
// in the handler is not enough either: under load the handler goroutines of
// a flood wait their turn behind everyone else's, and the flood goes on
// meanwhile. So the client's RST_STREAM frames are counted where they are
// read, in the connection's own Read, before Go's server sees them; more
// than the limit (Config.ResetLimit, limits.h2_max_resets_per_second)
// within rapidResetWindow closes the connection.

// rapidResetLimit is the default of how many streams a connection may
// reset within rapidResetWindow before it is closed (Config.ResetLimit). A
// browser cancelling navigation or a client timing out resets a few
// streams, not a hundred a second.
const (
	rapidResetLimit  = 100
	rapidResetWindow = time.Second
)

// resetWindow counts one connection's resets in a fixed window. Only the
// connection's reader touches it.
type resetWindow struct {
	limit int   // resets allowed per window; negative: no limit
	start int64 // UnixNano of the window's first reset
	n     int
}

// add counts n resets at now and reports whether the connection went over
// the limit.
func (w *resetWindow) add(now int64, n int) bool {
	if w.limit < 0 {
		return false
	}
	if now-w.start > int64(rapidResetWindow) {
		w.start, w.n = now, 0
	}
	w.n += n
	return w.n > w.limit
}

// resetLimit is the per-connection reset limit for resetWindow.limit.
func (g *Gateway) resetLimit() int {
	if g.cfg.ResetLimit == 0 {
		return rapidResetLimit
	}
	return g.cfg.ResetLimit
}

// h2FrameLen is the size of an HTTP/2 frame header (RFC 9113 4.1).
const h2FrameLen = 9

const frameRSTStream = 0x3

// h2Frames follows the frames a client sends on an HTTP/2 connection and
// counts its RST_STREAM frames. It sees every byte once, in order; a frame
// header split across reads is kept until it is whole.
type h2Frames struct {
	skip int              // bytes of the current frame payload (or preface) still to pass
	hdr  [h2FrameLen]byte // a frame header split across reads
	nhdr int
}

// scan advances over p and returns how many RST_STREAM frames began in it.
func (f *h2Frames) scan(p []byte) (resets int) {
	for len(p) > 0 {
		if f.skip > 0 {
			n := min(f.skip, len(p))
			f.skip -= n
			p = p[n:]
			continue
		}
		var h []byte
		if f.nhdr == 0 && len(p) >= h2FrameLen {
			h, p = p[:h2FrameLen], p[h2FrameLen:]
		} else {
			n := copy(f.hdr[f.nhdr:], p)
			f.nhdr += n
			p = p[n:]
			if f.nhdr < h2FrameLen {
				return resets
			}
			f.nhdr = 0
			h = f.hdr[:]
		}
		f.skip = int(binary.BigEndian.Uint32(h[:4]) >> 8) // 24-bit length
		if h[3] == frameRSTStream {
			resets++
		}
	}
	return resets
}
