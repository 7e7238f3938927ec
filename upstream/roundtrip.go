package upstream

// The round trip: RoundTrip's loop over attempts, and one attempt (send).
// Whether a failed attempt may be sent again is decided in retry.go; an
// attempt's timers and response body are in attempt.go.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"time"

	h1client "github.com/sluice-gw/sluice/h1compat/client"
)

// Abort handling. Tomcat counts every RST_STREAM it receives towards closing
// the whole connection (overhead protection), and Go's client sends a PING
// with each reset. So a request whose client left is not reset at once: it
// is given abortGrace to finish, and its response is read and discarded, up
// to drainLimit bytes. Only a request still running after that is reset.
const (
	abortGrace = time.Second
	drainLimit = 256 << 10
)

var _ http.RoundTripper = (*Backend)(nil)

// RoundTrip sends req to a server of the backend. It waits in the backend's
// queue when every connection is busy, and sends the request again, on
// another server when there is one, when a failed attempt provably did not
// reach the server, or when the method is idempotent and the body can be
// replayed; and once more, elsewhere, when an idempotent request was
// answered 404 or 503 by a server shutting down (see suspectAnswer).
// The caller's request is not modified. The request is detached from the
// client's cancellation (see abortGrace), so a client leaving does not
// reset the upstream stream at once. Informational (1xx) responses reach
// the caller the standard way: the httptrace.ClientTrace of req's context
// (Got1xxResponse), called from the connection's read loop.
func (b *Backend) RoundTrip(req *http.Request) (*http.Response, error) {
	return b.RoundTripInfo(req, nil)
}

// RoundTripInfo is RoundTrip filling in info, when not nil, for the
// caller's access log.
func (b *Backend) RoundTripInfo(req *http.Request, info *RequestInfo) (*http.Response, error) {
	st := b.cur()
	if IsUpgrade(req.Header) {
		return b.tunnel(req, st, info)
	}
	clientCtx := req.Context()
	var deadline time.Time
	if st.cfg.TotalTimeout > 0 {
		deadline = time.Now().Add(st.cfg.TotalTimeout)
	}
	// The caller's request is never modified (the http.RoundTripper
	// contract): each attempt sends a shallow copy with its own URL and
	// body (see send).
	var rp *replay
	reqBody, replayable := req.Body, true
	if st.cfg.Retries > 0 {
		var err error
		if rp, reqBody, replayable, err = b.prepareReplay(req, &st.cfg); err != nil {
			if err == ErrBodyMemoryFull {
				return nil, err
			}
			return nil, clientGone(fmt.Errorf("reading request body: %w", err))
		}
		if rp != nil {
			defer b.bodies.give(rp.held)
		}
	}
	var avoid *Server
	drainRetried, reusedClosed := false, false
	for attempt := 0; ; attempt++ {
		var early *http.Request
		if reqBody == nil || reqBody == http.NoBody {
			early = req
		}
		// An HTTP/1.1 connection's liveness peek (a system call per
		// request) buys nothing for a request that is sent again if the
		// connection turns out closed: one without a body, of an
		// idempotent method, with a retry left. It is skipped once: a
		// retry peeks, so that a run of closed connections costs one
		// attempt at most.
		unchecked := early != nil && !reusedClosed && attempt < st.cfg.Retries && st.idempotent[req.Method]
		c, err := b.acquire(clientCtx, st, avoid, deadline, info, early, unchecked)
		if err != nil {
			var de *DialError
			if !errors.As(err, &de) || attempt >= st.cfg.Retries || !backoff(clientCtx, attempt) {
				return nil, err
			}
			b.obs.retried(retryDial)
			continue
		}
		if clientCtx.Err() != nil {
			// The client left while the request waited for a slot: do
			// not send Tomcat work nobody will read (a rapid-reset
			// flood is exactly this); one already written is answered
			// and the answer dropped (giveBack).
			b.giveBack(c, early, st)
			return nil, clientGone(context.Cause(clientCtx))
		}
		s := c.server()
		seq := c.reqs.Add(1)
		if info != nil {
			info.Server, info.Protocol, info.ConnID, info.ConnReq = s.addr, c.pool.cfg.protocol, c.id, seq
			info.Attempts++
		}
		resp, wrote, err := b.send(req, reqBody, st, c, deadline, info)
		if err == nil {
			if !suspectAnswer(resp.StatusCode, c, time.Now()) || drainRetried || attempt >= st.cfg.Retries ||
				!replayable || !st.idempotent[req.Method] || !hasOther(st, s) {
				return resp, nil
			}
			// A server shutting down answers 404 while its webapps stop:
			// send the request once more, elsewhere.
			drainRetried = true
			resp.Body.Close()
			b.obs.retried(retryDraining)
			if rp != nil {
				reqBody = rp.body()
			}
			avoid = s
			continue
		}
		if unchecked && errors.Is(err, h1client.ErrReusedClosed) && !errors.Is(err, ErrClientGone) {
			// The server closed the idle connection, as the skipped
			// peek would have found: not the server's failure, and
			// nothing to wait for. Sent again at once, on a connection
			// the peek checks.
			reusedClosed = true
			b.obs.retried(retryReusedClosed)
			continue
		}
		if !errors.Is(err, ErrClientGone) {
			// A client that left says nothing of the server.
			s.failed(st)
		}
		reason := retryReason(err, wrote, st.idempotent[req.Method], replayable)
		if reason == "" || attempt >= st.cfg.Retries || !backoff(clientCtx, attempt) {
			return nil, err
		}
		b.obs.retried(reason)
		if rp != nil {
			reqBody = rp.body()
		}
		avoid = s
	}
}

// clientGone is ErrClientGone, because of err. (A helper of its own, so
// that the error's construction is not in RoundTripInfo's frame: see
// send.)
//
//go:noinline
func clientGone(err error) error {
	return fmt.Errorf("%w: %w", ErrClientGone, err)
}

// fieldsConn is a connection that takes a request's header as a list:
// the h2c client's.
type fieldsConn interface {
	RoundTripFields(*http.Request, []Field) (*http.Response, error)
	RoundTripList(*http.Request, []Field, *[][2]string) (*http.Response, error)
}

// roundTripConn sends out on cc, with info.Header as its header, in its
// order, when the caller gave one.
func roundTripConn(cc clientConn, out *http.Request, info *RequestInfo) (*http.Response, error) {
	if info == nil || info.Header == nil {
		return cc.RoundTrip(out)
	}
	if fc, ok := cc.(fieldsConn); ok {
		if info.ListResponse {
			return fc.RoundTripList(out, info.Header.Fields, &info.ResponseFields)
		}
		return fc.RoundTripFields(out, info.Header.Fields)
	}
	out.Header = info.Header.Map()
	if oc, ok := cc.(orderConn); ok {
		return oc.RoundTripOrder(out, info.Header.Order())
	}
	return cc.RoundTrip(out)
}

// orderConn is a connection that writes a request's header fields in a
// given order: the HTTP/1.1 client's.
type orderConn interface {
	RoundTripOrder(*http.Request, []string) (*http.Response, error)
}

var _ orderConn = (*h1Conn)(nil)

// send makes one attempt on a reserved slot of c, sending reqBody as the
// body of a copy of req. wrote reports whether the request headers were
// written, after which the server may have seen it.
//
// send is on the stack of every request while its stream is open: what it
// does before and after the round trip is in helpers of their own
// (startAttempt, attemptFailed, attemptAnswered), so that its frame stays
// small (see gateway's proxy.serve).
func (b *Backend) send(req *http.Request, reqBody io.ReadCloser, st *backendState, c *pconn, deadline time.Time, info *RequestInfo) (*http.Response, bool, error) {
	t := b.startAttempt(req, reqBody, st, c, deadline, info)
	resp, err := roundTripConn(c.cc, &t.out, info)
	if err != nil {
		err = attemptFailed(t, req.Context(), c, err)
		return nil, t.ctx.wrote.Load(), err
	}
	return attemptAnswered(t, st, c, resp), true, nil
}

// startAttempt counts the attempt on c's server and builds its tracker,
// whose request (a copy of req, with reqBody as its body) is the one sent.
//
//go:noinline
func (b *Backend) startAttempt(req *http.Request, reqBody io.ReadCloser, st *backendState, c *pconn, deadline time.Time, info *RequestInfo) *tracker {
	s := c.server()
	s.active.Add(1)
	s.requests.Add(1)

	// A caller giving its 1xx hook in info has no other (RequestInfo.Got1xx):
	// the client's context is not searched for a trace, a walk up its
	// chain of contexts, which an HTTP/1.1 connection's keeps cold.
	var hooks *httptrace.ClientTrace
	if info == nil || info.Got1xx == nil {
		hooks = httptrace.ContextClientTrace(req.Context())
	}
	t := newTracker(&b.att, req.Context(), hooks, c, st.cfg.ResponseHeaderTimeout, st.cfg.IdleTimeout, deadline)
	// The tracker holds the attempt's request and URL, so the copies cost
	// no allocation. Its context carries the caller's trace hooks
	// (Got1xxResponse, WroteHeaders).
	t.url = *req.URL
	t.url.Scheme, t.url.Host = "http", s.addr
	out := &t.out
	*out = *req.WithContext(&t.ctx)
	out.URL, out.Body = &t.url, reqBody
	if info != nil {
		// An earlier attempt's answer (see suspectAnswer) is not this one's.
		info.ResponseFields = nil
	}
	if info != nil && info.Got1xx != nil {
		// The caller's 1xx hook, given without a context of its own, on
		// the attempt's trace, which out's context holds.
		t.trace.Got1xxResponse = info.Got1xx
	}
	return t
}

// attemptFailed ends t, whose round trip on c failed with err, and
// returns the error send reports.
//
//go:noinline
func attemptFailed(t *tracker, clientCtx context.Context, c *pconn, err error) error {
	cause := t.cause()
	t.finish()
	switch {
	case clientCtx.Err() != nil:
		return clientGone(err)
	case cause == ErrResponseHeaderTimeout:
		err = cause
	case cause == ErrTotalTimeout:
		err = ErrTotalTimeout
	}
	return &RoundTripError{Addr: c.server().addr, Protocol: c.pool.cfg.protocol, Err: err}
}

// attemptAnswered moves t, answered with resp on c, to its body phase
// and gives resp the body that ends t.
//
//go:noinline
func attemptAnswered(t *tracker, st *backendState, c *pconn, resp *http.Response) *http.Response {
	t.bodyPhase()
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		c.server().failedAnswer(st)
	default:
		c.server().succeeded()
	}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// Upgraded connections (WebSocket over HTTP/1.1) need the writable
		// body the ReverseProxy looks for, and are not subject to the idle
		// timeout of a request.
		t.noTimeouts()
		resp.Body = &upgradedBody{ReadWriteCloser: rwc, t: t}
		return resp
	}
	t.body = body{rc: resp.Body, t: t}
	resp.Body = &t.body
	return resp
}
