// Package h1compat owns how Sluice opens HTTP/1.1 keep-alive connections to
// servers that do not speak h2c. Each connection carries one request at a
// time; the pool in upstream bounds their number, reuses idle ones most
// recently used first and closes them after the idle timeout.
package h1compat

import (
	"context"
	"net"
	"net/http"
	"time"
)

// Config tunes the connections of one backend. Zero values pick defaults.
type Config struct {
	// ConnectTimeout bounds the TCP dial. Zero means 2s.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers after the
	// request is written. Zero means no limit.
	ResponseHeaderTimeout time.Duration
	// KeepAlive is the TCP keep-alive period. Zero means 30s.
	KeepAlive time.Duration
}

// NewTransport returns a Transport that speaks only HTTP/1.1, for use through
// Transport.NewClientConn, one call per pooled connection.
func NewTransport(cfg Config) *http.Transport {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 2 * time.Second
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: cfg.KeepAlive}
	return &http.Transport{
		DialContext: d.DialContext,
		Protocols:   &protos,
		// A proxy forwards the client's Accept-Encoding untouched and must
		// never decompress on its behalf.
		DisableCompression:     true,
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout,
		MaxResponseHeaderBytes: 1 << 20,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
}

// Dial opens one HTTP/1.1 connection to addr. A response with
// "Connection: close" makes the connection unusable afterwards; the pool sees
// that through ClientConn.Err and replaces it lazily.
func Dial(ctx context.Context, t *http.Transport, addr string) (*http.ClientConn, error) {
	return t.NewClientConn(ctx, "http", addr)
}
