package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// H3Server serves the gateway over HTTP/3 (QUIC) on a UDP socket: the same
// routes, backends and upstream connections as the TCP listeners.
type H3Server struct {
	srv *http3.Server
	g   *Gateway
}

// NewH3Server builds an HTTP/3 server for g with the listeners'
// certificates.
func NewH3Server(g *Gateway, certs *Certs) *H3Server {
	s := &H3Server{g: g}
	// The same header and stream limits as the TCP listeners (NewServer):
	// the configured head limit is applied per request (checkLimits), so
	// that a head over it is counted as refused.
	maxHeader, maxStreams := g.protocolHeaderBytes(), g.cfg.MaxConcurrentStreams
	if maxStreams <= 0 {
		maxStreams = 250
	}
	s.srv = &http3.Server{
		Handler:        g,
		TLSConfig:      http3.ConfigureTLSConfig(certs.TLSConfig()),
		MaxHeaderBytes: maxHeader,
		IdleTimeout:    g.idleTimeout(),
		Logger:         g.log,
		QUICConfig: &quic.Config{
			MaxIncomingStreams: int64(maxStreams),
			Allow0RTT:          false,
		},
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			return g.conns.quicConn(ctx, c)
		},
	}
	return s
}

// Serve answers QUIC on pc until Shutdown.
func (s *H3Server) Serve(pc net.PacketConn) error {
	err := s.srv.Serve(pc)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, quic.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and lets in-flight requests finish until ctx
// ends.
func (s *H3Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}

// udpBufferBytes is what quic-go asks for to absorb bursts at high
// throughput (its "UDP Buffer Sizes" wiki page).
const udpBufferBytes = 7 << 20

// ListenUDP opens the HTTP/3 socket and sizes its buffers. The kernel caps
// SO_RCVBUF/SO_SNDBUF at net.core.rmem_max/wmem_max unless the process may
// force them (CAP_NET_ADMIN); when neither works the log says what to set.
func ListenUDP(addr string, log *slog.Logger) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("http3 listen %s: %w", addr, err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("http3 listen %s: %w", addr, err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return c, nil
	}
	var got [2]int
	rc.Control(func(fd uintptr) {
		for i, opt := range [][2]int{{syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE}, {syscall.SO_SNDBUF, syscall.SO_SNDBUFFORCE}} {
			if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt[1], udpBufferBytes) != nil {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt[0], udpBufferBytes)
			}
			// Linux reports double the size it granted (bookkeeping).
			v, _ := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt[0])
			got[i] = v / 2
		}
	})
	if got[0] < udpBufferBytes || got[1] < udpBufferBytes {
		log.Warn("http3: UDP buffers smaller than quic-go wants; raise net.core.rmem_max and net.core.wmem_max (sysctl) or grant CAP_NET_ADMIN",
			"want_bytes", udpBufferBytes, "receive_bytes", got[0], "send_bytes", got[1])
	} else {
		log.Info("http3: UDP buffers sized", "receive_bytes", got[0], "send_bytes", got[1])
	}
	return c, nil
}

// SetAltSvc advertises HTTP/3 on TCP responses.
func (s *H3Server) SetAltSvc(h http.Header) { s.srv.SetQUICHeaders(h) }
