package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/h2c/client"
	"golang.org/x/net/http2"
)

// Retry reasons, the fixed label set of sluice_retries_total.
const (
	retryRefused    = "refused_stream"
	retryGoAway     = "goaway"
	retryNotSent    = "not_sent"
	retryIdempotent = "idempotent"
	retryDial       = "dial"
	retryDraining   = "draining"
	// retryReusedClosed: an HTTP/1.1 connection reserved without its
	// liveness peek was closed by the server while it idled.
	retryReusedClosed = "idle_closed"
)

// suspectAnswer reports whether status, received over connection c, may be
// an artefact of the server shutting down rather than the application's
// answer: a 404 or 503 from a server that has sent GOAWAY on that
// connection or, within goAwaySuspect, on another, or that a reload
// removed or a protocol switch drains. Tomcat stopping without
// gracefulStopAwaitMillis answers 404 on open connections while its
// webapps stop, and a connection busy as it pauses may get no GOAWAY until
// its last one, after those 404s.
func suspectAnswer(status int, c *pconn, now time.Time) bool {
	if status != http.StatusNotFound && status != http.StatusServiceUnavailable {
		return false
	}
	s := c.server()
	if at := s.goAwayAt.Load(); at != 0 && now.Sub(time.Unix(0, at)) < goAwaySuspect {
		return true
	}
	return c.goingAway.Load() || c.pool.draining.Load() || s.retiring.Load()
}

// goAwaySuspect is how long after a GOAWAY on one of a server's
// connections its 404s and 503s on the others are suspect: Tomcat's
// webapps stop within tens of milliseconds of its first GOAWAY. A server
// answering so for real meanwhile costs an idempotent request one more
// try, on another server.
const goAwaySuspect = 5 * time.Second

// hasOther reports whether a server of st other than s is in rotation.
func hasOther(st *backendState, s *Server) bool {
	now := time.Now().UnixNano()
	for _, o := range st.servers {
		if o != s && !o.retiring.Load() && o.inRotation(now) {
			return true
		}
	}
	return false
}

// unprocessed reports why err proves the server did not process the
// request, or "": the h2c client says so (client.ErrNotProcessed) for
// REFUSED_STREAM and for streams a GOAWAY left out.
func unprocessed(err error, wroteHeaders bool) string {
	if errors.Is(err, client.ErrNotProcessed) {
		if se, ok := errors.AsType[*client.StreamError](err); ok && se.Code == http2.ErrCodeRefusedStream {
			return retryRefused
		}
		return retryGoAway
	}
	if !wroteHeaders {
		return retryNotSent
	}
	return ""
}

// retryReason decides whether a failed attempt may be sent again.
// replayable means the body is absent or buffered.
func retryReason(err error, wroteHeaders, idempotent, replayable bool) string {
	if errors.Is(err, ErrClientGone) || errors.Is(err, context.Canceled) {
		return ""
	}
	var t interface{ Timeout() bool }
	timedOut := errors.As(err, &t) && t.Timeout()
	if r := unprocessed(err, wroteHeaders); r != "" && (replayable || r == retryNotSent && !timedOut) {
		return r
	}
	if idempotent && replayable && !timedOut {
		return retryIdempotent
	}
	return ""
}

// defaultIdempotent are the methods RFC 9110 calls idempotent, as HAProxy
// and Caddy treat them; config may add more.
var defaultIdempotent = []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, "TRACE"}

// replay holds a request body buffered so the request can be sent again;
// held is what it takes of the backend's retry_body_memory.
type replay struct {
	buf  []byte
	held int64
}

func (r *replay) body() io.ReadCloser { return heldBody{bytes.NewReader(r.buf)} }

// heldBody reads a replay's buffer. Held whole in memory, it is capped
// with the h2c connection's other bodies (client.HeldBody) whatever its
// length: a request waiting for its turn holds no client's flow-control
// credit.
type heldBody struct{ *bytes.Reader }

func (heldBody) Close() error { return nil }
func (heldBody) HeldWhole()   {}

var _ client.HeldBody = heldBody{}

// partBody is a body of unknown length past the limit: what was read of
// it, then the rest. It is as sole as the body it continues
// (client.SoleBody).
type partBody struct {
	io.Reader
	rc io.ReadCloser
}

func (b *partBody) Close() error { return b.rc.Close() }

func (b *partBody) Sole() bool {
	s, ok := b.rc.(client.SoleBody)
	return ok && s.Sole()
}

// bodyMemory counts the bytes of request bodies a backend holds for
// retries at once, against retry_body_memory.
type bodyMemory struct{ used atomic.Int64 }

// take reserves n bytes, unless that would go over max (0: no bound).
func (m *bodyMemory) take(n, max int64) bool {
	for {
		u := m.used.Load()
		if max > 0 && u+n > max {
			return false
		}
		if m.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (m *bodyMemory) give(n int64) { m.used.Add(-n) }

// prepareReplay is readReplay within the backend's retry_body_memory. A
// body it has no room for is counted; an HTTP/1.1 client's is streamed
// (client.SoleBody: the h2c client still caps it), any other's fails with
// ErrBodyMemoryFull: streamed uncapped, it and others like it could take
// every Tomcat thread, each servlet waiting for a body the connection's
// window holds back, and holding it unread would hold the client's
// connection credit that its other streams may need.
func (b *Backend) prepareReplay(req *http.Request, cfg *Config) (*replay, io.ReadCloser, bool, error) {
	full := false
	rp, body, replayable, err := readReplay(req, cfg.RetryBodyLimit, func(n int64) bool {
		if b.bodies.take(n, cfg.RetryBodyMemory) {
			return true
		}
		full = true
		return false
	})
	if full {
		b.obs.bodyMemoryFull()
		if s, ok := body.(client.SoleBody); !ok || !s.Sole() {
			return nil, nil, false, ErrBodyMemoryFull
		}
	}
	return rp, body, replayable, err
}

// readReplay makes req's body replayable when it is small enough to
// buffer and take, when not nil, grants the memory for it (a body of
// unknown length asks for limit, and gives back what it did not use). It
// returns the body to send first (req.Body is left in place: a
// RoundTripper must not modify the caller's request) and reports whether
// the request can be sent more than once: true for no body, or a buffered
// one. The caller gives rp.held back once the request is done.
func readReplay(req *http.Request, limit int64, take func(int64) bool) (*replay, io.ReadCloser, bool, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, req.Body, true, nil
	}
	if limit <= 0 || req.ContentLength > limit {
		return nil, req.Body, false, nil
	}
	want := req.ContentLength
	if want <= 0 {
		want = limit
	}
	if take != nil && !take(want) {
		return nil, req.Body, false, nil
	}
	give := func(n int64) {
		if take != nil {
			take(-n)
		}
	}
	if req.ContentLength > 0 {
		buf := make([]byte, req.ContentLength)
		if _, err := io.ReadFull(req.Body, buf); err != nil {
			give(want)
			return nil, nil, false, err
		}
		req.Body.Close()
		rp := &replay{buf: buf, held: want}
		return rp, rp.body(), true, nil
	}
	// Unknown length: buffer up to the limit; past it, stream what was
	// read followed by the rest, without replay.
	buf, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		give(want)
		return nil, nil, false, err
	}
	if int64(len(buf)) > limit {
		give(want)
		return nil, &partBody{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}, false, nil
	}
	give(want - int64(len(buf)))
	req.Body.Close()
	rp := &replay{buf: buf, held: int64(len(buf))}
	return rp, rp.body(), true, nil
}

// backoff waits before retry attempt n (0-based): 5 ms doubling, with
// ±50 % jitter so that a burst of failed requests does not retry in step.
func backoff(ctx context.Context, n int) bool {
	d := 5 * time.Millisecond << min(n, 6)
	d = d/2 + rand.N(d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
