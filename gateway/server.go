package gateway

import (
	"context"
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

// Server serves the gateway on one TCP listener: cleartext HTTP/1.1 and
// h2c with prior knowledge on the same port, or TLS with ALPN h2 and
// http/1.1.
type Server struct {
	srv *http.Server
}

// NewServer wraps g in an http.Server with the gateway's limits, for a
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
	protos.SetHTTP1(true)
	// With TLS too: the listener decrypts, and Go's server reads HTTP/2
	// from the guard by its preface (tlslisten.go).
	protos.SetUnencryptedHTTP2(true)
	var h http.Handler = g
	connContext := g.conns.connContext
	if withTLS {
		h = withTLSState{g}
		connContext = func(ctx context.Context, c net.Conn) context.Context {
			ctx = g.conns.connContext(ctx, c)
			if tc, ok := c.(*tlsGuardConn); ok {
				ctx = context.WithValue(ctx, tlsStateKey{}, &tc.state)
			}
			return ctx
		}
	}
	return &Server{srv: &http.Server{
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
	}}
}

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

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets in-flight requests finish until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return err
}
