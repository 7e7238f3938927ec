package gateway

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/sluice-gw/sluice/gateway/h1"
)

// ListenerConfig is one client-facing TCP listener.
type ListenerConfig struct {
	// Addr is host:port.
	Addr string
	// Name labels the listener in the sluice_listener_* metrics and in
	// Listeners.Down, e.g. "listen". Empty means the bound address.
	Name string
	// Certs turns on TLS, with ALPN h2 and http/1.1. Nil serves cleartext
	// HTTP/1.1 and h2c (prior knowledge).
	Certs *Certs
	// ProxyProtocol requires a PROXY protocol v1 or v2 header on every
	// connection; a connection without a valid one is closed.
	ProxyProtocol bool
	// ProxyFrom are the peers whose PROXY header is honoured: with
	// ProxyProtocol, a connection from any other address is closed at
	// accept, so nobody else can claim a client address. Required with
	// ProxyProtocol; 0.0.0.0/0 and ::/0 let any peer in.
	ProxyFrom []netip.Prefix
	// Bound, when not nil, is a TCP socket already bound to Addr, used in
	// place of binding it. Listen owns it: it closes it on error.
	Bound net.Listener
}

// proxyHeaderTimeout bounds the wait for a PROXY protocol header.
const proxyHeaderTimeout = 5 * time.Second

// Listen opens a listener with the gateway's connection cap (shared by all
// listeners), PROXY protocol if asked, the HTTP/1.1 smuggling guard on
// cleartext, and TLS. Serve it with the Server from NewServer for the same
// config (TLS or not).
func (g *Gateway) Listen(lc ListenerConfig) (net.Listener, error) {
	if lc.ProxyProtocol && len(lc.ProxyFrom) == 0 {
		if lc.Bound != nil {
			lc.Bound.Close()
		}
		return nil, fmt.Errorf("listen %s: %w", lc.Addr, errProxyFromMissing)
	}
	raw := lc.Bound
	if raw == nil {
		var err error
		if raw, err = ListenTCP(lc.Addr); err != nil {
			return nil, fmt.Errorf("listen %s: %w", lc.Addr, err)
		}
	}
	name := lc.Name
	if name == "" {
		name = raw.Addr().String()
	}
	// At the bottom, so that no wrapper above ever sees an accept error
	// short of the listener's close.
	var ln net.Listener = &limitListener{
		Listener: g.m.listeners.Watch(raw, name, g.log), max: int64(g.maxConns()), open: &g.open,
		rejected: func() { g.conns.reject(reasonLimit) },
	}
	if lc.ProxyProtocol {
		ln = &proxyListener{
			Listener: ln, timeout: proxyHeaderTimeout, from: lc.ProxyFrom,
			rejected:  func() { g.conns.reject(reasonProxyProtocol) },
			untrusted: func() { g.conns.reject(reasonProxyUntrusted) },
		}
	}
	if lc.Certs != nil {
		return newTLSListener(ln, lc.Certs.TLSConfig("h2", "http/1.1"), g.handshakeTimeout(),
			func() { g.conns.reject(reasonTLSHandshake) }, g.guard), nil
	}
	return &guardListener{Listener: ln, guard: g.guard}, nil
}

// ListenTCP binds a client-facing TCP listener on addr, with the socket
// options its connections inherit (TCP keep-alive, TCP_NODELAY, deferred
// accept where the system has them: setListenerOpts), so that accepting
// one costs no setsockopt call; on Linux its connections are accepted and
// served on their bare descriptors until one must wait (rawListener).
// Listen binds with it; a caller that binds for ListenerConfig.Bound
// should too.
func ListenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: listenKeepAlive, Control: listenerControl}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	return rawListener(ln.(*net.TCPListener))
}

func listenerControl(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) { err = setListenerOpts(int(fd)) }); cerr != nil {
		return cerr
	}
	return err
}

// handshakeTimeout bounds a TLS handshake, as the read-header timeout
// bounds a request head: a client too slow for either is cut.
func (g *Gateway) handshakeTimeout() time.Duration {
	if g.cfg.ReadHeaderTimeout > 0 {
		return g.cfg.ReadHeaderTimeout
	}
	return 10 * time.Second
}

func (g *Gateway) maxConns() int {
	if g.cfg.MaxConns > 0 {
		return g.cfg.MaxConns
	}
	return 100000
}

// guard puts c behind gc, the smuggling guard and rapid-reset counter,
// with their rejections counted.
func (g *Gateway) guard(gc *guardConn, c net.Conn) {
	gc.Conn = c
	gc.rejected = func(err error) { g.conns.reject(rejectReason(err)) }
	gc.flooded = func() { g.conns.reject(reasonRapidReset) }
	gc.resets.limit = g.resetLimit()
	gc.g.lim = h1.Limits{MaxHeadBytes: g.maxHeaderBytes() + headSlack, MaxTargetBytes: g.maxHeaderBytes()}
}

// guardListener wraps each connection in the guard.
type guardListener struct {
	net.Listener
	guard func(*guardConn, net.Conn)
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	gc := new(guardConn)
	l.guard(gc, c)
	return gc, nil
}
