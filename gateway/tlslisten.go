package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// tlsListener does the TLS handshake itself, off the accept loop, so that
// it can put the guard on the decrypted stream of a connection that chose
// h2 by ALPN: the rapid-reset counter and the write coalescer. Go's server
// takes HTTP/2 from a *tls.Conn only by ALPN, where nothing could count
// the frames, so such a connection reaches it as a tlsGuardConn: it
// serves it as it serves h2c with prior knowledge, and the handler takes
// r.TLS from the connection's TLS state (withTLSState). A client that
// chose h2 must send the HTTP/2 preface first, or is closed. Any other
// connection (ALPN http/1.1, or none) is accepted as a tlsH1Conn, with no
// guard: gateway/h1 parses every HTTP/1.1 head itself, and the guard is
// put on one only if it opens with the HTTP/2 preface and is handed to
// Go's server (Server's H2).
type tlsListener struct {
	inner   net.Listener
	cfg     *tls.Config
	timeout time.Duration
	failed  func()                     // a handshake failed or timed out
	guard   func(*guardConn, net.Conn) // puts a connection behind the guard

	ready  chan net.Conn   // handshaken connections for Accept
	ctx    context.Context // cancelled by Close: aborts handshakes
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and handshakes in progress
	errMu  sync.Mutex     // guards err
	err    error          // why the inner listener stopped
	closed chan struct{}  // closed when the accept loop has stopped
}

func newTLSListener(inner net.Listener, cfg *tls.Config, timeout time.Duration, failed func(), guard func(*guardConn, net.Conn)) *tlsListener {
	l := &tlsListener{
		inner: inner, cfg: cfg, timeout: timeout, failed: failed, guard: guard,
		ready: make(chan net.Conn), closed: make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	defer l.wg.Done()
	defer close(l.closed)
	for {
		c, err := l.inner.Accept()
		if err != nil {
			// The bottom of inner retries failed accepts (EMFILE and
			// the like) itself, so this is inner's close.
			l.errMu.Lock()
			l.err = err
			l.errMu.Unlock()
			return
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

// handshake runs one handshake under the deadline and queues the
// connection for Accept, or closes it.
func (l *tlsListener) handshake(raw net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(raw, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		tc.Close()
		if l.ctx.Err() == nil {
			l.failed()
		}
		return
	}
	var c net.Conn
	if st := tc.ConnectionState(); st.NegotiatedProtocol == "h2" {
		gc := &tlsGuardConn{state: st}
		l.guard(&gc.guardConn, tc)
		gc.g.expectH2()
		c = gc
	} else {
		c = &tlsH1Conn{Conn: tc, state: st}
	}
	select {
	case l.ready <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// Accept returns the next connection whose handshake succeeded.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	case <-l.closed:
		l.errMu.Lock()
		defer l.errMu.Unlock()
		return nil, l.err
	}
}

// Close stops accepting, abandons handshakes in progress and waits for
// their goroutines.
func (l *tlsListener) Close() error {
	l.cancel()
	err := l.inner.Close()
	l.wg.Wait()
	return err
}

func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }

// tlsGuardConn is a TLS connection behind the guard. Go's server does not
// see a *tls.Conn, so the handler takes the TLS state from here (see
// withTLSState).
type tlsGuardConn struct {
	guardConn
	state tls.ConnectionState
}

// tlsH1Conn is a TLS connection that did not choose h2: HTTP/1.1, served
// by gateway/h1 without the guard (see tlsListener).
type tlsH1Conn struct {
	net.Conn // the *tls.Conn
	state    tls.ConnectionState
}

// tlsStateKey is the context key of a tlsGuardConn's TLS state.
type tlsStateKey struct{}
