// Package h2c owns how Sluice opens multiplexed cleartext HTTP/2 (prior
// knowledge) connections to an upstream server, and how it tells whether a
// server speaks h2c at all. Pooling, queueing and balancing live in upstream.
// Its write coalescer (Coalesce), made for those connections, also sits
// under the gateway's HTTP/2 client connections.
package h2c

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Config tunes the connections of one backend. Zero values pick defaults.
type Config struct {
	// KeepAlive is the TCP keep-alive period. Zero means 30s.
	KeepAlive time.Duration
	// PingInterval sends a PING after this long without a frame from the
	// server. Zero sends none. Tomcat counts each PING it receives towards
	// its overhead protection (+overheadCountFactor, default 10, against a
	// budget of -100 that only HEADERS and DATA frames replenish), so on an
	// idle connection with Tomcat's defaults about ten pings in a row end
	// in GOAWAY; 30s keeps that beyond Tomcat's own 20s idle close.
	PingInterval time.Duration
	// PingTimeout closes the connection when a PING goes unanswered this
	// long. Zero means 5s.
	PingTimeout time.Duration
}

// NewTransport returns a Transport that speaks only h2c with prior
// knowledge. Use it through Transport.NewClientConn, one call per pooled
// connection: its own connection cache is never used.
func NewTransport(cfg Config) *http.Transport {
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	// The dial is bounded by the caller's context (the backend's connect
	// timeout, which a reload may change).
	d := &net.Dialer{KeepAlive: cfg.KeepAlive}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// The settings watcher sits outside the coalescer: it sees
			// every byte in order on both sides, in the caller's goroutine,
			// and the coalescer alone owns the socket's write side.
			var conn net.Conn = newCoalescedConn(c)
			if w, ok := ctx.Value(watchKey{}).(*settingsWatch); ok {
				conn = &watchedConn{Conn: conn, w: w}
			}
			return conn, nil
		},
		Protocols: &protos,
		// A proxy forwards the client's Accept-Encoding untouched and must
		// never decompress on its behalf.
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
		HTTP2: &http.HTTP2Config{
			// Many streams share one connection: a large connection window
			// keeps one slow reader from stalling the others.
			MaxReceiveBufferPerConnection: 4 << 20,
			MaxReceiveBufferPerStream:     1 << 20,
			SendPingTimeout:               cfg.PingInterval,
			PingTimeout:                   cfg.PingTimeout,
			WriteByteTimeout:              30 * time.Second,
		},
	}
}

// ErrNoSettings reports a server that accepted the connection but never
// sent its SETTINGS: it does not speak h2c, or is stuck.
var ErrNoSettings = errors.New("h2c: no SETTINGS from server")

// Dial opens one h2c connection to addr (t from NewTransport) and returns
// only once the server's SETTINGS are in force. Until then the client
// assumes 100 concurrent streams; a server allowing fewer would refuse the
// excess, so the pool must not use the connection earlier. A connection
// closed or reset before then fails the dial at once. onGoAway, if not
// nil, is called from the connection's reader when the server sends GOAWAY,
// just before the client acts on it.
func Dial(ctx context.Context, t *http.Transport, addr string, onGoAway func(GoAway)) (*http.ClientConn, error) {
	return DialStats(ctx, t, addr, onGoAway, nil)
}

// DialStats is Dial that also measures the connection's PING round trips
// into st, when not nil.
func DialStats(ctx context.Context, t *http.Transport, addr string, onGoAway func(GoAway), st *ConnStats) (*http.ClientConn, error) {
	w := &settingsWatch{acked: make(chan struct{}), closed: make(chan struct{}), stats: st}
	if onGoAway != nil {
		w.goAway.Store(&onGoAway)
	}
	cc, err := t.NewClientConn(context.WithValue(ctx, watchKey{}, w), "http", addr)
	if err != nil {
		return nil, err
	}
	select {
	case <-w.acked:
		return cc, nil
	case <-w.closed:
		// Closed or reset before SETTINGS: fail now rather than at the
		// connect timeout.
		cc.Close()
		return nil, fmt.Errorf("%w: connection closed: %w", ErrNoSettings, w.readErr)
	case <-ctx.Done():
		cc.Close()
		return nil, fmt.Errorf("%w: %w", ErrNoSettings, context.Cause(ctx))
	}
}

// clientPreface is the HTTP/2 connection preface followed by an empty
// SETTINGS frame.
var clientPreface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")

// ErrNotH2C reports that a server answered the h2c preface some other way.
var ErrNotH2C = errors.New("h2c: server does not speak h2c")

// Probe reports whether the server at addr answers an h2c prior-knowledge
// preface with HTTP/2 SETTINGS. A server that answers with HTTP/1.1 or closes
// the connection gives false with a nil error; only a failed dial or a
// timeout gives an error. The probe connection is closed afterwards.
func Probe(ctx context.Context, addr string, timeout time.Duration) (bool, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, fmt.Errorf("h2c probe %s: %w", addr, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	if _, err := conn.Write(clientPreface); err != nil {
		return false, fmt.Errorf("h2c probe %s: write preface: %w", addr, err)
	}
	return classify(bufio.NewReader(conn), addr)
}

// classify reads the server's first bytes after the preface.
func classify(r io.Reader, addr string) (bool, error) {
	var hdr [9]byte
	n, err := io.ReadFull(r, hdr[:])
	if bytes.HasPrefix(hdr[:n], []byte("HTTP/")) {
		return false, nil
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false, fmt.Errorf("h2c probe %s: no answer: %w", addr, err)
		}
		// Closed or reset without a word: the server rejected the preface.
		return false, nil
	}
	// A server speaking HTTP/2 starts with its SETTINGS frame (type 4) on
	// stream 0.
	isSettings := hdr[3] == 0x4 && hdr[5]&0x7f == 0 && hdr[6] == 0 && hdr[7] == 0 && hdr[8] == 0
	return isSettings, nil
}
