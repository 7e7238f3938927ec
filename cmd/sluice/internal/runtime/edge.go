package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

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

// listenUDP opens the HTTP/3 socket when cfg asks for it. It comes before
// the gateway exists because the gateway's Alt-Svc names its port, and
// with tls_listen on port 0 that port is only known once the socket is
// bound; the TLS listener then takes the same port number on TCP.
func listenUDP(cfg *config.Config, log *slog.Logger) (udp *net.UDPConn, tlsAddr, altSvc string, err error) {
	if !cfg.HTTP3 {
		return nil, cfg.TLSListen, "", nil
	}
	udp, err = gateway.ListenUDP(cfg.TLSListen, log)
	if err != nil {
		return nil, "", "", err
	}
	port := udp.LocalAddr().(*net.UDPAddr).Port
	host, _, _ := net.SplitHostPort(cfg.TLSListen)
	// ma=86400: clients may remember the alternative for a day, the
	// common choice; a shorter one makes them fall back to TCP sooner
	// after HTTP/3 is turned off.
	return udp, net.JoinHostPort(host, strconv.Itoa(port)), fmt.Sprintf(`h3=":%d"; ma=86400`, port), nil
}

// openEdge opens the TCP listeners on g and builds every server. udp,
// when not nil, is the socket from listenUDP; on error everything opened,
// udp included, is closed.
func openEdge(cfg *config.Config, g *gateway.Gateway, certs *gateway.Certs, udp *net.UDPConn, tlsAddr string) (*edge, error) {
	e := &edge{udp: udp}
	var err error
	e.ln, err = g.Listen(gateway.ListenerConfig{Addr: cfg.Listen, Name: "listen", ProxyProtocol: cfg.ProxyProtocol, ProxyFrom: cfg.ProxyProtocolFrom})
	if err != nil {
		e.close()
		return nil, err
	}
	e.srv = gateway.NewServer(g, false)
	if tlsAddr != "" {
		e.tlsLn, err = g.Listen(gateway.ListenerConfig{Addr: tlsAddr, Name: "tls_listen", Certs: certs, ProxyProtocol: cfg.ProxyProtocol, ProxyFrom: cfg.ProxyProtocolFrom})
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
