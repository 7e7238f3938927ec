package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/gateway/h1"
)

// Server serves the gateway on one TCP listener: cleartext HTTP/1.1 and
// h2c with prior knowledge on the same port, or TLS with ALPN h2 and
// http/1.1. HTTP/1.1 is served by Sluice's own server (gateway/h1);
// HTTP/2 by Go's, to which h1 hands connections that open with the
// preface (and the TLS listener those whose ALPN chose h2).
type Server struct {
	srv    *http.Server // HTTP/2, fed by h2
	h1     *h1.Server   // HTTP/1.1, and the accept loops
	h2     *connListener
	h2Done chan struct{} // closed when srv.Serve(h2) has returned
}

// NewServer builds the servers for g with the gateway's limits, for a
// listener from Gateway.Listen with or without TLS.
func NewServer(g *Gateway, withTLS bool) *Server {
	cfg := g.cfg
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	// The configured limit is applied per request, under this bound
	// (maxHeadHard).
	cfg.MaxHeaderBytes = g.protocolHeaderBytes()
	if cfg.MaxConcurrentStreams <= 0 {
		cfg.MaxConcurrentStreams = 250
	}
	g.conns.headerTimeout = cfg.ReadHeaderTimeout
	var protos http.Protocols
	// With TLS too: the listener decrypts, and Go's server reads HTTP/2
	// from the guard by its preface (tlslisten.go).
	protos.SetUnencryptedHTTP2(true)
	var h http.Handler = g
	if withTLS {
		h = withTLSState{g}
	}
	connContext := func(ctx context.Context, c net.Conn) context.Context {
		ctx = g.conns.connContext(ctx, c)
		switch c := c.(type) {
		case *tlsGuardConn:
			ctx = context.WithValue(ctx, tlsStateKey{}, &c.state)
		case *frontConn:
			if c.tls != nil {
				ctx = context.WithValue(ctx, tlsStateKey{}, c.tls)
			}
		}
		return ctx
	}
	s := &Server{h2: newConnListener(), h2Done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           h,
		Protocols:         &protos,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       g.idleTimeout(),
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnContext:       connContext,
		ConnState:         g.conns.connState,
		ErrorLog:          log.New(&serverLog{g: g}, "", 0),
		// Go's HTTP/2 server already bounds what a hostile client can
		// cost: handlers queued by rapid resets (CVE-2023-44487; the
		// guard cuts a flood sooner, reset.go),
		// CONTINUATION floods (CVE-2023-45288), and HPACK tables
		// (MaxDecoderHeaderTableSize, with MaxHeaderBytes, maxHeadHard,
		// on the decoded size).
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: cfg.MaxConcurrentStreams,
			// Go's default is 1 MiB, and each connection's frame reader
			// keeps a buffer as large as the largest frame it has read,
			// so one big frame per connection would pin up to 1 MiB per
			// idle client. 16 KiB is the protocol's default, what clients
			// send anyway.
			MaxReadFrameSize: 16 << 10,
		},
	}
	s.h1 = &h1.Server{
		Handler: h,
		// The guard's bounds (listen.go), and the field count, which
		// checkLimits applies on HTTP/2 and HTTP/3. The parser counts
		// Host, which max_header_count does not: one more. (An HTTP/1.0
		// request without Host and one field too many gets its 431
		// from checkLimits.)
		Limits: h1.Limits{
			MaxHeadBytes:   g.maxHeaderBytes() + headSlack,
			MaxTargetBytes: g.maxHeaderBytes(),
			MaxFields:      g.maxHeaderCount() + 1,
		},
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       g.idleTimeout(),
		ConnContext:       connContext,
		ConnState:         g.conns.connState,
		AdmitLimit:        g.admitLimit,
		Refused:           func(err error) { g.conns.reject(rejectReason(err)) },
		Log:               g.log,
		H2: func(c net.Conn, ahead []byte) {
			fc := c.(*frontConn)
			g.conns.forget(c)
			// The guard reads the preface again, and follows the frames.
			replay := &replayConn{Conn: fc.Conn, ahead: ahead}
			switch {
			case fc.tls != nil: // TLS without ALPN h2
				gc := &tlsGuardConn{state: *fc.tls}
				gc.Conn = replay
				if fc.guard != nil {
					fc.guard(&gc.guardConn, replay)
				}
				s.h2.push(gc)
			case fc.gc != nil:
				fc.gc.Conn = replay
				s.h2.push(fc.outer)
			case fc.guard != nil: // cleartext
				gc := new(guardConn)
				fc.guard(gc, replay)
				s.h2.push(gc)
			default: // a listener without the guard (tests)
				s.h2.push(replay)
			}
		},
	}
	g.m.watchWaiting(s.h1.Waiting)
	go func() {
		defer close(s.h2Done)
		s.srv.Serve(s.h2)
	}()
	return s
}

// frontConn is what the HTTP/1.1 server serves: the connection under the
// guard, which HTTP/1.1 does without (h1 parses every head itself); the
// guard comes back for a connection handed to HTTP/2.
type frontConn struct {
	net.Conn
	gc    *guardConn           // the guardConn accepted, or nil
	outer net.Conn             // what was accepted: the guardConn holding gc, or the bare connection
	tls   *tls.ConnectionState // for TLS connections
	// guard puts a connection from Gateway.Listen behind the guard when it
	// is handed to HTTP/2; nil for a listener not from Gateway.Listen
	// (tests).
	guard func(*guardConn, net.Conn)
	// client is the connection's record in the client connection
	// metrics (connTracker.track).
	client clientConn
}

// SyscallConn lets h1 wait for an idle connection's next request on the
// socket, without a buffer, when nothing in between buffers bytes.
func (c *frontConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNoRawConn
}

// QuickSocket tells h1 that SyscallConn neither reads nor waits: not
// TLS, and no PROXY protocol header to read first (proxyConn). h1 then
// reads the connection's first request on its accept loop.
func (c *frontConn) QuickSocket() bool {
	if c.tls != nil {
		return false
	}
	_, proxied := c.Conn.(*proxyConn)
	return !proxied
}

// errNoRawConn is SyscallConn's answer for a connection with no socket of
// its own to wait on (TLS, or bytes buffered above the socket).
var errNoRawConn = errors.New("gateway: no raw socket to wait on")

// replayConn reads ahead first, then from Conn.
type replayConn struct {
	net.Conn
	ahead []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.ahead) > 0 {
		n := copy(p, c.ahead)
		c.ahead = c.ahead[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// connListener hands connections to Go's server.
type connListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

// push hands c over, or closes it if the listener is closed.
func (l *connListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.closed:
		c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{} }

// withTLSState gives requests on TLS connections, which Go's server sees
// through the guard rather than as a *tls.Conn (HTTP/1.1 and HTTP/2 alike),
// their TLS state in r.TLS: X-Forwarded-Proto, the protocol metrics and
// logs depend on it.
type withTLSState struct{ g *Gateway }

func (h withTLSState) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
			r.TLS = st
		}
	}
	h.g.ServeHTTP(w, r)
}

// serverLog counts what net/http reports only through its error log
// (failed TLS handshakes) and passes every line to the debug log.
type serverLog struct{ g *Gateway }

func (l *serverLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if strings.HasPrefix(line, "http: TLS handshake error") {
		l.g.conns.reject(reasonTLSHandshake)
	}
	l.g.log.Debug(line)
	return len(p), nil
}

// idleTimeout is how long an idle client connection stays open.
func (g *Gateway) idleTimeout() time.Duration {
	if g.cfg.IdleTimeout > 0 {
		return g.cfg.IdleTimeout
	}
	return 120 * time.Second
}

// Serve accepts connections on ln until Shutdown or Close: HTTP/2 over
// TLS goes to Go's server, everything else to h1 first.
func (s *Server) Serve(ln net.Listener) error {
	err := s.h1.Serve(newFrontListener(ln, s.h2))
	if err == h1.ErrServerClosed {
		return nil
	}
	return err
}

// frontListener routes what ln accepts: TLS connections that chose h2 by
// ALPN straight to Go's server, the rest to h1 as frontConns.
// A cleartext listener from Gateway.Listen (a guardListener) is read
// below its guard, and the TLS listener puts none on HTTP/1.1: h1 parses
// every HTTP/1.1 head itself, so the guard is only put on a connection
// handed to HTTP/2 (frontConn.guard), not allocated for every connection.
type frontListener struct {
	net.Listener
	h2    *connListener
	guard func(*guardConn, net.Conn) // the guardListener's, if ln was one
}

func newFrontListener(ln net.Listener, h2 *connListener) *frontListener {
	switch l := ln.(type) {
	case *guardListener:
		return &frontListener{Listener: l.Listener, h2: h2, guard: l.guard}
	case *tlsListener:
		return &frontListener{Listener: l, h2: h2, guard: l.guard}
	}
	return &frontListener{Listener: ln, h2: h2}
}

func (l *frontListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		fc := &frontConn{Conn: c, outer: c, guard: l.guard}
		switch c := c.(type) {
		case *tlsGuardConn: // ALPN h2 (tlsListener)
			go l.h2.push(c)
			continue
		case *tlsH1Conn:
			fc.Conn, fc.tls = c.Conn, &c.state
		case *guardConn:
			fc.gc = c
		}
		if fc.gc != nil {
			fc.Conn = fc.gc.Conn
		}
		return fc, nil
	}
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	errs := make(chan error, 1)
	go func() { errs <- s.h1.Shutdown(ctx) }()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	if err1 := <-errs; err == nil {
		err = err1
	}
	<-s.h2Done
	return err
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.h1.Close()
	err := s.srv.Close()
	<-s.h2Done
	return err
}
