// Package h1compat owns how Sluice opens HTTP/1.1 keep-alive connections to
// servers that do not speak h2c. Each connection carries one request at a
// time; the pool in upstream bounds their number, reuses idle ones most
// recently used first and closes them after the idle timeout.
package h1compat

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Config tunes the connections of one backend. Zero values pick defaults.
type Config struct {
	// KeepAlive is the TCP keep-alive period. Zero means 30s.
	KeepAlive time.Duration
}

// NewTransport returns a Transport that speaks only HTTP/1.1, for use through
// Transport.NewClientConn, one call per pooled connection.
func NewTransport(cfg Config) *http.Transport {
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	// The dial is bounded by the caller's context (the backend's connect
	// timeout, which a reload may change).
	d := &net.Dialer{KeepAlive: cfg.KeepAlive}
	return &http.Transport{
		DialContext: d.DialContext,
		Protocols:   &protos,
		// A proxy forwards the client's Accept-Encoding untouched and must
		// never decompress on its behalf.
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
}

// Dial opens one HTTP/1.1 connection to addr. A response with
// "Connection: close" makes the connection unusable afterwards; the pool
// detects it with KeepAliveSpent and dials the replacement at once.
func Dial(ctx context.Context, t *http.Transport, addr string) (*http.ClientConn, error) {
	return t.NewClientConn(ctx, "http", addr)
}

// KeepAliveSpent reports whether resp ends its connection's keep-alive:
// "Connection: close" (Tomcat's answer to its maxKeepAliveRequests-th
// request), or "Keep-Alive: max=N" with N <= 1, a server saying at most one
// more request may follow. A 101 hands the connection over and is not
// counted.
func KeepAliveSpent(resp *http.Response) bool {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return false
	}
	if resp.Close {
		return true
	}
	ka := resp.Header["Keep-Alive"]
	if len(ka) == 0 {
		return false
	}
	for rest := ka[0]; rest != ""; {
		var param string
		param, rest, _ = strings.Cut(rest, ",")
		name, value, ok := strings.Cut(param, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "max") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(value))
		return err == nil && n <= 1
	}
	return false
}
