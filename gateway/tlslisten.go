package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// tlsListener does the TLS handshake itself, off the accept loop, so that
// it can put the HTTP/1.1 smuggling guard on the decrypted stream. Go's
// server negotiates h2 only on a *tls.Conn, so connections that chose h2
// by ALPN are handed over as they are (HTTP/2 framing leaves nothing to
// smuggle); every other one is served as HTTP/1.1 behind the guard, with
// its TLS state carried in a tlsGuardConn for r.TLS.
type tlsListener struct {
	inner    net.Listener
	cfg      *tls.Config
	timeout  time.Duration
	failed   func()              // a handshake failed or timed out
	rejected func(reason string) // the guard refused a request

	ready  chan net.Conn   // handshaken connections for Accept
	ctx    context.Context // cancelled by Close: aborts handshakes
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and handshakes in progress
	errMu  sync.Mutex     // guards err
	err    error          // why the inner listener stopped
	closed chan struct{}  // closed when the accept loop has stopped
}

func newTLSListener(inner net.Listener, cfg *tls.Config, timeout time.Duration, failed func(), rejected func(string)) *tlsListener {
	l := &tlsListener{
		inner: inner, cfg: cfg, timeout: timeout, failed: failed, rejected: rejected,
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
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
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
	var c net.Conn = tc
	if st := tc.ConnectionState(); st.NegotiatedProtocol != "h2" {
		c = &tlsGuardConn{guardConn: guardConn{Conn: tc, rejected: l.rejected}, state: st}
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

// tlsGuardConn is an HTTP/1.1-over-TLS connection behind the smuggling
// guard. Go's server does not see a *tls.Conn, so the handler takes the
// TLS state from here (see withTLSState).
type tlsGuardConn struct {
	guardConn
	state tls.ConnectionState
}

// tlsStateKey is the context key of a tlsGuardConn's TLS state.
type tlsStateKey struct{}
