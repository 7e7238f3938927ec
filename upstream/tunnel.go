package upstream

// Tunnels: a request asking to switch protocols (a WebSocket) gets an
// HTTP/1.1 connection of its own to the server, outside the pools, whatever
// protocol the server's pool speaks. Tomcat serves HTTP/1.1 and h2c on one
// connector and has no WebSocket over HTTP/2 (RFC 8441), and a tunnel
// holding one of the HTTP/1.1 pool's connections for hours would starve
// ordinary requests. The connection is the response's body: the gateway
// splices the client to it after a 101, and closing it ends the tunnel;
// any other answer closes the connection with its body.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	h1client "github.com/sluice-gw/sluice/h1compat/client"
)

// ErrTunnelLimit means every eligible server holds h1.max_tunnels tunnels.
var ErrTunnelLimit = fmt.Errorf("%w: tunnel limit reached", ErrNoCapacity)

// IsUpgrade reports whether h asks to switch to another protocol than h2c
// (RFC 9110 section 7.8): such a request goes through a tunnel. Upgrade:
// h2c is answered as the plain HTTP/1.1 request it also is.
func IsUpgrade(h http.Header) bool {
	up := h["Upgrade"]
	return len(up) > 0 && up[0] != "" && !httpguts.HeaderValuesContainsToken(up, "h2c") &&
		httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade")
}

// tunnels is one server's set of tunnel connections.
type tunnels struct {
	mu     sync.Mutex // guards n, open and closed
	n      int        // reserved: dialling, awaiting the answer, or open
	open   map[*tunnelConn]struct{}
	closed bool // the server was closed: no new tunnels
}

// reserve takes a tunnel slot if fewer than limit are held.
func (ts *tunnels) reserve(limit int) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed || ts.n >= limit {
		return false
	}
	ts.n++
	return true
}

// count is the number of slots held.
func (ts *tunnels) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.n
}

// closeAll closes every tunnel and refuses new ones.
func (ts *tunnels) closeAll() {
	ts.mu.Lock()
	ts.closed = true
	open := make([]*tunnelConn, 0, len(ts.open))
	for t := range ts.open {
		open = append(open, t)
	}
	ts.mu.Unlock()
	for _, t := range open {
		t.Close()
	}
}

// tunnel sends req, which asks to switch protocols, on a connection of its
// own to a server of the backend, retrying another server when the dial
// fails.
func (b *Backend) tunnel(req *http.Request, st *backendState, info *RequestInfo) (*http.Response, error) {
	clientCtx := req.Context()
	// Like any request, the first tunnels after a start or reload wait for
	// a server to be detected rather than fail.
	if err := b.awaitDetection(clientCtx, st); err != nil {
		return nil, err
	}
	var avoid *Server
	for attempt := 0; ; attempt++ {
		s, err := b.pickTunnel(st, avoid)
		if err != nil {
			return nil, err
		}
		if info != nil {
			info.Server, info.Protocol, info.ConnID, info.ConnReq = s.addr, H1, connIDs.Add(1), 1
			info.Attempts++
		}
		res, err := s.openTunnel(req, st)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, ErrClientGone) {
			s.failed(st)
		}
		var de *DialError
		if !errors.As(err, &de) || attempt >= st.cfg.Retries || !backoff(clientCtx, attempt) {
			return nil, err
		}
		b.obs.retried(retryDial)
		avoid = s
	}
}

// pickTunnel reserves a tunnel slot on a server in rotation, in the
// balancer's order.
func (b *Backend) pickTunnel(st *backendState, avoid *Server) (*Server, error) {
	servers := st.servers
	now := time.Now().UnixNano()
	sel, ok := eligible(servers, now, avoid)
	if !ok {
		return nil, fmt.Errorf("%w in backend %q", ErrNoHealthyServer, b.name)
	}
	limit := st.cfg.H1.MaxTunnels
	start := st.bal.first(servers)
	for i := range servers {
		s := servers[(start+i)%len(servers)]
		if sel.ok(s) && s.tun.reserve(limit) {
			s.obs.tunnels.Inc()
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w in backend %q (h1.max_tunnels %d)", ErrTunnelLimit, b.name, limit)
}

// openTunnel dials s and sends req on the new connection; s has a slot
// reserved for it, which the response body's Close gives back. Waiting for
// the answer is bounded by the response header timeout and ends if the
// client leaves; once the answer is in, the connection lives until closed.
func (s *Server) openTunnel(req *http.Request, st *backendState) (*http.Response, error) {
	cfg := &st.cfg
	t := &tunnelConn{s: s}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), cfg.ConnectTimeout)
	cc, err := h1client.Dial(ctx, s.addr, h1client.Config{})
	cancel()
	if err != nil {
		t.release()
		return nil, &DialError{Addr: s.addr, Err: err}
	}
	s.requests.Add(1)
	t.cc = cc
	var rctx context.Context
	rctx, t.cancel = context.WithCancelCause(context.WithoutCancel(req.Context()))
	timer := time.AfterFunc(cfg.ResponseHeaderTimeout, func() { t.cancel(ErrResponseHeaderTimeout) })
	stop := context.AfterFunc(req.Context(), func() { t.cancel(ErrClientGone) })
	out := req.WithContext(rctx)
	u := *req.URL
	u.Scheme, u.Host = "http", s.addr
	out.URL = &u
	res, err := cc.RoundTrip(out)
	timer.Stop()
	stop()
	if err != nil {
		if cause := context.Cause(rctx); cause == ErrResponseHeaderTimeout || cause == ErrClientGone {
			err = fmt.Errorf("%w: %w", cause, err)
		}
		t.Close()
		return nil, &RoundTripError{Addr: s.addr, Protocol: H1, Err: err}
	}
	switch res.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		s.failed(st)
	default:
		s.succeeded()
	}
	t.rc = res.Body
	if rwc, ok := res.Body.(io.ReadWriteCloser); ok && res.StatusCode == http.StatusSwitchingProtocols {
		t.w = rwc
		if !s.tun.add(t) {
			t.Close()
			return nil, &RoundTripError{Addr: s.addr, Protocol: H1, Err: ErrClosed}
		}
		res.Body = t
		return res, nil
	}
	res.Body = tunnelBody{t}
	return res, nil
}

// add registers an open tunnel, unless the server was closed meanwhile.
func (ts *tunnels) add(t *tunnelConn) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	if ts.open == nil {
		ts.open = map[*tunnelConn]struct{}{}
	}
	ts.open[t] = struct{}{}
	return true
}

// tunnelConn is one tunnel's upstream connection: after a 101, the
// switched connection the gateway reads and writes.
type tunnelConn struct {
	s      *Server
	cc     *h1client.Conn
	cancel context.CancelCauseFunc // the request's context
	rc     io.ReadCloser           // the response body
	w      io.Writer               // the switched connection, after a 101
	once   sync.Once
}

var _ io.ReadWriteCloser = (*tunnelConn)(nil)

func (t *tunnelConn) Read(p []byte) (int, error)  { return t.rc.Read(p) }
func (t *tunnelConn) Write(p []byte) (int, error) { return t.w.Write(p) }

// Close closes the connection and gives the server's slot back, once.
func (t *tunnelConn) Close() error {
	var err error
	t.once.Do(func() {
		if t.rc != nil {
			err = t.rc.Close()
		}
		t.cancel(nil)
		t.cc.Close()
		t.release()
	})
	return err
}

// release gives the reserved slot back.
func (t *tunnelConn) release() {
	ts := &t.s.tun
	ts.mu.Lock()
	ts.n--
	delete(ts.open, t)
	ts.mu.Unlock()
	t.s.obs.tunnels.Dec()
	// A removed server waits for its tunnels too before it closes.
	t.s.changed()
}

// tunnelBody is the body of an answer other than 101: not writable, and
// its Close closes the connection too.
type tunnelBody struct{ t *tunnelConn }

func (b tunnelBody) Read(p []byte) (int, error) { return b.t.Read(p) }
func (b tunnelBody) Close() error               { return b.t.Close() }
