// Package h2c holds what Sluice's cleartext HTTP/2 (prior knowledge)
// connections share: how Sluice tells whether a server speaks h2c at all
// (Probe), and the write coalescer (Coalesce) that sits under the upstream
// client connections (package h2c/client) and the gateway's HTTP/2 client
// connections. Pooling, queueing and balancing live in upstream.
package h2c

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

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
