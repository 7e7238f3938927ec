package h1

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.1 connections with Handler, reading requests with
// this package's parser and writing responses itself. The zero values of
// its fields are usable, as documented on each.
type Server struct {
	// Handler answers each request. Its *http.Request is built from the
	// parsed head at this boundary; the ResponseWriter is this package's
	// (Flush, Hijack, EnableFullDuplex, deadlines, trailers).
	Handler http.Handler
	// Limits bound each request head; refusals are answered with the
	// Error's status and the connection closed.
	Limits Limits
	// ReadHeaderTimeout bounds the wait for a new connection's first
	// bytes and the reading of each head once its first byte came. Zero
	// means 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a connection idle between requests this long.
	// Zero means 120s.
	IdleTimeout time.Duration
	// ConnContext, if not nil, derives each connection's context, as
	// http.Server.ConnContext does.
	ConnContext func(context.Context, net.Conn) context.Context
	// ConnState, if not nil, is told of each connection's state changes,
	// as http.Server.ConnState is (new, active, idle, hijacked, closed).
	ConnState func(net.Conn, http.ConnState)
	// Refused, if not nil, is told of each request the parser refuses.
	Refused func(error)
	// H2, if not nil, takes connections that open with the HTTP/2
	// preface's first line (prior knowledge, RFC 9113 3.3), with the
	// bytes read so far, which it must replay; it owns the connection
	// from then on, and ConnState is not told of it again. Nil means
	// such a connection is refused like any other HTTP/2.0 request line.
	H2 func(c net.Conn, ahead []byte)
	// Log gets handler panics and failed writes at debug level. Nil
	// means slog.Default.
	Log *slog.Logger
	// AdmitLimit, if not nil, is how many requests may run at once (the
	// backends' connection slots): further ones wait their turn, in
	// arrival order, read but not yet handed to Handler (workers.go). It
	// is asked about once a second; the limit is never below 16. Nil
	// means no limit.
	AdmitLimit func() int

	mu        sync.Mutex         // guards the fields below, and closing's writes
	conns     map[*conn]struct{} // open connections; their state is theirs (conn.state)
	listeners map[net.Listener]struct{}
	empty     chan struct{} // made by the first Shutdown or Close; closed once conns is empty
	emptied   bool          // empty is closed
	// closing: Shutdown or Close ran. Read without mu by moveTo, which
	// writes the connection's state before and closeIdle reads it after
	// (both atomics): one of them sees the other's write, so an idle
	// connection is closed by one side or the other.
	closing atomic.Bool

	workers workers // the goroutines that serve requests (conn.run)
	// firstWaits counts the connections whose first bytes were not
	// there when they were accepted, and were waited for (for tests).
	firstWaits atomic.Int64
	// looks counts the watchers' system calls that read no request: the
	// peeks that tell the next request's bytes from a client that left
	// while a request is served, and the reads of an idle connection that
	// found nothing (for tests).
	looks atomic.Int64
	// acceptReads counts the connections read on the accept loop
	// (serveAccepted; for tests).
	acceptReads atomic.Int64
	// kicks counts the parked watchers moved on by a worker (for tests).
	kicks atomic.Int64
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("h1: server closed")

func (s *Server) readHeaderTimeout() time.Duration {
	if s.ReadHeaderTimeout > 0 {
		return s.ReadHeaderTimeout
	}
	return 10 * time.Second
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 120 * time.Second
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Serve accepts connections on ln and serves each on a goroutine of its
// own until Shutdown or Close, which close ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			return err
		}
		s.serveNew(c)
	}
}

// serveNew starts serving c, just accepted. A connection whose socket is
// at hand (QuickSocket) and not on the poller yet is read here, on the
// accept loop, as far as that never waits (conn.serveAccepted): with a
// listener with deferred accept (gateway's) its first request is there
// already, and when that is its last (Connection: close) it goes straight
// to the admission, in the order the connections were accepted, with no
// goroutine started for it. A goroutine started for each new connection
// would wait its turn to run behind the next ones the loop accepts (each
// new goroutine runs next on the loop's P, pushing the one before to the
// back of the run queue), and requests would be admitted in no order
// (BENCHMARKS.md, twentieth session). Any other connection gets its
// goroutine at once (conn.begin), which goes on as its watcher: nothing
// else about c is looked at here, since finding its socket may read (a
// PROXY protocol header) or wait (TLS).
func (s *Server) serveNew(c net.Conn) {
	cc := newConn(s, c)
	if q, ok := c.(QuickSocket); ok && q.QuickSocket() && cc.serveAccepted() {
		return
	}
	go cc.begin()
}

// QuickSocket is implemented by a connection that can tell whether its
// socket (its SyscallConn) is at hand without a read or a wait: no PROXY
// protocol header to read first, no TLS. Serve reads the first request of
// such a connection on its accept loop (serveNew).
type QuickSocket interface {
	QuickSocket() bool
}

// ServeConn serves c until it closes, fails, is hijacked or the server
// shuts down, and closes c then, unless hijacked. It returns earlier, once
// c's first bytes came: requests are served on the server's workers, and
// an idle connection waits on a small goroutine of its own (conn.await);
// Shutdown and Close end them.
func (s *Server) ServeConn(c net.Conn) {
	s.ServeConnAhead(c, nil)
}

// ServeConnAhead is ServeConn for a connection of which ahead was read
// already.
func (s *Server) ServeConnAhead(c net.Conn, ahead []byte) {
	cc := newConn(s, c)
	if len(ahead) > 0 {
		cc.takeBuf()
		cc.w = copy(*cc.buf, ahead)
	}
	cc.serve()
}

// track records cc's state; it reports false when the server is closing
// and cc, new, must not start.
func (s *Server) track(cc *conn, st http.ConnState) bool {
	s.mu.Lock()
	switch {
	case st == http.StateNew && s.closing.Load():
		s.mu.Unlock()
		return false
	case st == http.StateClosed || st == http.StateHijacked || st == stateHandedOff:
		delete(s.conns, cc)
		s.closeEmptyLocked()
	default:
		if s.conns == nil {
			s.conns = map[*conn]struct{}{}
		}
		s.conns[cc] = struct{}{}
		cc.state.Store(int32(st))
	}
	s.mu.Unlock()
	if s.ConnState != nil && st != stateHandedOff {
		s.ConnState(cc.c, st)
	}
	return true
}

// stateHandedOff is a connection given to Server.H2: no longer tracked,
// and not reported to ConnState.
const stateHandedOff http.ConnState = -1

// moveTo marks cc active, as its next request begins, or idle after one.
// It reports false when the server is shutting down and cc must close
// instead: Shutdown closes only the connections it sees idle, and may have
// seen this one active.
func (s *Server) moveTo(cc *conn, st http.ConnState) bool {
	cc.state.Store(int32(st))
	if s.closing.Load() {
		return false
	}
	if s.ConnState != nil {
		s.ConnState(cc.c, st)
	}
	return true
}

// markWaiting marks cc active as its request starts waiting for a place
// in the admission (workers.queueLocked), so that a shutdown lets the
// request be served rather than closing the connection as idle. A
// shutdown already begun may have closed it as idle: its request is then
// lost with the connection, as it would be on the way to a worker.
func (s *Server) markWaiting(cc *conn) {
	s.mu.Lock()
	cc.state.Store(int32(http.StateActive))
	closing := s.closing.Load()
	s.mu.Unlock()
	if !closing && s.ConnState != nil {
		s.ConnState(cc.c, http.StateActive)
	}
}

// Waiting is how many requests wait for a place in the admission: read
// and not yet handed to the handler (workers.go).
func (s *Server) Waiting() int { return int(s.workers.waiting.Load()) }

// Shutdown stops accepting, closes idle connections and lets active ones
// finish their request until ctx ends; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	done := s.closeIdle()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// closeIdle starts the shutdown: listeners and idle connections closed.
// The channel is closed once no connection is left.
func (s *Server) closeIdle() <-chan struct{} {
	s.mu.Lock()
	s.closing.Store(true)
	var idle []net.Conn
	for cc := range s.conns {
		if http.ConnState(cc.state.Load()) != http.StateActive {
			idle = append(idle, cc.c)
		}
	}
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	if s.empty == nil {
		s.empty = make(chan struct{})
	}
	s.closeEmptyLocked()
	done := s.empty
	s.mu.Unlock()
	s.workers.close()
	for _, ln := range lns {
		ln.Close()
	}
	for _, c := range idle {
		c.Close()
	}
	return done
}

// closeEmptyLocked closes empty once the server is closing and no
// connection is left.
func (s *Server) closeEmptyLocked() {
	if s.closing.Load() && len(s.conns) == 0 && !s.emptied {
		close(s.empty)
		s.emptied = true
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closeIdle()
	s.mu.Lock()
	all := make([]net.Conn, 0, len(s.conns))
	for cc := range s.conns {
		all = append(all, cc.c)
	}
	s.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
	return nil
}

// shuttingDown reports whether Shutdown or Close ran: responses then
// close their connection.
func (s *Server) shuttingDown() bool { return s.closing.Load() }
