package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/config"
	"github.com/sluice-gw/sluice/gateway"
)

// edge is the client-facing side of a running gateway: the cleartext
// listener, and when configured the TLS listener and the HTTP/3 socket,
// each with its server. All of them serve the same gateway, so every client
// protocol lands on the same backends and upstream connections.
type edge struct {
	ln     net.Listener // cleartext HTTP/1.1 + h2c
	srv    *gateway.Server
	tlsLn  net.Listener // nil without tls_listen
	tlsSrv *gateway.Server
	udp    *net.UDPConn // nil without http3
	h3     *gateway.H3Server
}

// tlsSocket is where the TLS listener goes: its address ("" without
// tls_listen), and the TCP socket when listenUDP had to bind it.
type tlsSocket struct {
	addr string
	ln   net.Listener // nil: openEdge binds addr
}

// close releases ln, for a start that fails before openEdge.
func (s tlsSocket) close() {
	if s.ln != nil {
		s.ln.Close()
	}
}

// listenUDP opens the HTTP/3 socket when cfg asks for it. It comes before
// the gateway exists because the gateway's Alt-Svc names its port, and
// with tls_listen on port 0 that port is only known once the socket is
// bound; the TLS listener then takes the same port number on TCP.
func listenUDP(cfg *config.Config, log *slog.Logger) (udp *net.UDPConn, tlsAt tlsSocket, altSvc string, err error) {
	if !cfg.HTTP3 {
		return nil, tlsSocket{addr: cfg.TLSListen}, "", nil
	}
	udp, tlsAt, err = bindUDPAndTCP(cfg.TLSListen, func(addr string) (*net.UDPConn, error) { return gateway.ListenUDP(addr, log) })
	if err != nil {
		return nil, tlsSocket{}, "", err
	}
	// ma=86400: clients may remember the alternative for a day, the
	// common choice; a shorter one makes them fall back to TCP sooner
	// after HTTP/3 is turned off.
	return udp, tlsAt, fmt.Sprintf(`h3=":%d"; ma=86400`, udp.LocalAddr().(*net.UDPAddr).Port), nil
}

// pairAttempts bounds the search for a port free on both UDP and TCP.
const pairAttempts = 20

// bindUDPAndTCP opens the HTTP/3 socket on addr with listenUDP. With a
// fixed port the TLS listener binds the same address later. With port 0
// the kernel picks a UDP port, and the TLS listener must take the same
// number on TCP, where a socket may already hold it (an outgoing
// connection's source port, say): so the TCP socket is bound here too,
// and on a clash both are tried again on another port.
func bindUDPAndTCP(addr string, listenUDP func(string) (*net.UDPConn, error)) (*net.UDPConn, tlsSocket, error) {
	host, port, _ := net.SplitHostPort(addr)
	if p, _ := strconv.Atoi(port); p != 0 {
		udp, err := listenUDP(addr)
		return udp, tlsSocket{addr: addr}, err
	}
	for range pairAttempts {
		udp, err := listenUDP(addr)
		if err != nil {
			return nil, tlsSocket{}, err
		}
		at := net.JoinHostPort(host, strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port))
		ln, err := gateway.ListenTCP(at)
		if err == nil {
			return udp, tlsSocket{addr: at, ln: ln}, nil
		}
		udp.Close()
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, tlsSocket{}, fmt.Errorf("tls_listen %s: %w", at, err)
		}
	}
	return nil, tlsSocket{}, fmt.Errorf("tls_listen %s: no port free on both UDP (http3) and TCP in %d tries", addr, pairAttempts)
}

// openEdge opens the TCP listeners on g and builds every server. udp and
// tlsAt are what listenUDP returned; on error everything opened, those
// included, is closed.
func openEdge(cfg *config.Config, g *gateway.Gateway, certs *gateway.Certs, udp *net.UDPConn, tlsAt tlsSocket) (*edge, error) {
	e := &edge{udp: udp}
	var err error
	e.ln, err = g.Listen(gateway.ListenerConfig{Addr: cfg.Listen, Name: "listen", ProxyProtocol: cfg.ProxyProtocol, ProxyFrom: cfg.ProxyProtocolFrom})
	if err != nil {
		tlsAt.close()
		e.close()
		return nil, err
	}
	e.srv = gateway.NewServer(g, false)
	if tlsAt.addr != "" {
		e.tlsLn, err = g.Listen(gateway.ListenerConfig{Addr: tlsAt.addr, Bound: tlsAt.ln, Name: "tls_listen", Certs: certs, ProxyProtocol: cfg.ProxyProtocol, ProxyFrom: cfg.ProxyProtocolFrom})
		if err != nil {
			e.close()
			return nil, err
		}
		e.tlsSrv = gateway.NewServer(g, true)
	}
	if udp != nil {
		e.h3 = gateway.NewH3Server(g, certs)
	}
	return e, nil
}

// serve starts one goroutine per listener (three at most) in wg; each
// sends its result to errc, which must have room for them, and returns
// once shutdown or close has closed its listener. A listener that fails
// ends Run, so its error names it.
func (e *edge) serve(wg *sync.WaitGroup, errc chan<- error) {
	run := func(name string, f func() error) {
		wg.Go(func() {
			err := f()
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
			}
			errc <- err
		})
	}
	run("listen", func() error { return e.srv.Serve(e.ln) })
	if e.tlsLn != nil {
		run("tls_listen", func() error { return e.tlsSrv.Serve(e.tlsLn) })
	}
	if e.h3 != nil {
		run("http3", func() error { return e.h3.Serve(e.udp) })
	}
}

// shutdown drains every server at once, within ctx: all stop accepting
// together, HTTP/2 and HTTP/3 clients get GOAWAY, and in-flight requests
// on any protocol share the same grace period.
func (e *edge) shutdown(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	drain := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
		})
	}
	drain("listen", e.srv.Shutdown)
	if e.tlsSrv != nil {
		drain("tls_listen", e.tlsSrv.Shutdown)
	}
	if e.h3 != nil {
		drain("http3", e.h3.Shutdown)
	}
	wg.Wait()
	// quic-go does not close a socket it was handed.
	if e.udp != nil {
		e.udp.Close()
	}
	return errors.Join(errs...)
}

// close releases what openEdge or listenUDP opened, for a start that fails
// before serving.
func (e *edge) close() {
	if e.ln != nil {
		e.ln.Close()
	}
	if e.tlsLn != nil {
		e.tlsLn.Close()
	}
	if e.udp != nil {
		e.udp.Close()
	}
}

// logAttrs describes the listeners for the start-up log line.
func (e *edge) logAttrs() []any {
	attrs := []any{"listen", e.ln.Addr().String()}
	if e.tlsLn != nil {
		attrs = append(attrs, "tls_listen", e.tlsLn.Addr().String())
	}
	if e.udp != nil {
		attrs = append(attrs, "http3", e.udp.LocalAddr().String())
	}
	return attrs
}
