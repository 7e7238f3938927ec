package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
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
// connection, or that a reload removed or a protocol switch drains.
// Tomcat stopping without gracefulStopAwaitMillis answers 404 on open
// connections while its webapps stop.
func suspectAnswer(status int, c *pconn) bool {
	if status != http.StatusNotFound && status != http.StatusServiceUnavailable {
		return false
	}
	return c.goingAway.Load() || c.pool.draining.Load() || c.server().retiring.Load()
}

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

// replay holds a request body buffered so the request can be sent again.
type replay struct {
	buf []byte
}

func (r *replay) body() io.ReadCloser { return io.NopCloser(bytes.NewReader(r.buf)) }

// prepareReplay makes req's body replayable when it is small enough to
// buffer. It returns the body to send first (req.Body is left in place: a
// RoundTripper must not modify the caller's request) and reports whether
// the request can be sent more than once: true for no body, or a buffered
// one.
func prepareReplay(req *http.Request, limit int64) (*replay, io.ReadCloser, bool, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, req.Body, true, nil
	}
	if limit <= 0 || req.ContentLength > limit {
		return nil, req.Body, false, nil
	}
	if req.ContentLength > 0 {
		buf := make([]byte, req.ContentLength)
		if _, err := io.ReadFull(req.Body, buf); err != nil {
			return nil, nil, false, err
		}
		req.Body.Close()
		rp := &replay{buf: buf}
		return rp, rp.body(), true, nil
	}
	// Unknown length: buffer up to the limit; past it, stream what was
	// read followed by the rest, without replay.
	buf, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, nil, false, err
	}
	if int64(len(buf)) > limit {
		return nil, struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}, false, nil
	}
	req.Body.Close()
	rp := &replay{buf: buf}
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
