package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server serves the gateway on one TCP listener: HTTP/1.1 and h2c with
// prior knowledge on the same port.
type Server struct {
	srv *http.Server
}

// NewServer wraps g in an http.Server with the gateway's limits.
func NewServer(g *Gateway) *Server {
	cfg := g.cfg
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = 1 << 20
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	return &Server{srv: &http.Server{
		Handler:           g,
		Protocols:         &protos,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnContext:       g.conns.connContext,
		ConnState:         g.conns.connState,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: 250,
		},
	}}
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
