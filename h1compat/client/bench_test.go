package client

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// cannedServer answers every request head (GETs without a body) with the
// same small response, as cheaply as it can, so that a benchmark measures
// the client.
func cannedServer(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	answer := []byte("HTTP/1.1 200 \r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\nDate: Wed, 02 Dec 2026 04:00:00 GMT\r\nKeep-Alive: timeout=20\r\nConnection: keep-alive\r\n\r\nok")
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReaderSize(nc, 16<<10)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) == 2 {
						if _, err := nc.Write(answer); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// benchRequest is a request like the gateway's: a few fields, no body.
func benchRequest(b *testing.B) *http.Request {
	req, err := http.NewRequestWithContext(context.Background(), "GET", "http://127.0.0.1/index.html?q=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header = http.Header{
		"Accept":            {"*/*"},
		"User-Agent":        {"wrk"},
		"X-Forwarded-For":   {"127.0.0.1"},
		"X-Forwarded-Host":  {"127.0.0.1:19100"},
		"X-Forwarded-Proto": {"http"},
	}
	return req
}

type reserver interface {
	http.RoundTripper
	Reserve() error
}

func benchRoundTrips(b *testing.B, rt reserver) {
	req := benchRequest(b)
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		if err := rt.Reserve(); err != nil {
			b.Fatal(err)
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
		resp.Body.Close()
	}
}

// BenchmarkRoundTrip: one keep-alive GET and its small answer, this
// client against net/http's ClientConn (the path it replaced), on one
// connection to an in-process server.
func BenchmarkRoundTrip(b *testing.B) {
	addr := cannedServer(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.Run("client", func(b *testing.B) {
		c, err := Dial(ctx, addr, Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		benchRoundTrips(b, c)
	})
	b.Run("net-http", func(b *testing.B) {
		cc, err := netHTTPTransport().NewClientConn(ctx, "http", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		benchRoundTrips(b, cc)
	})
}

// BenchmarkWriteHead: building a request head, without the socket.
func BenchmarkWriteHead(b *testing.B) {
	req := benchRequest(b)
	var buf bytes.Buffer
	buf.Grow(bufSize)
	b.ReportAllocs()
	for b.Loop() {
		h, err := appendHead(buf.Bytes()[:0], req, nil, false)
		if err != nil || len(h) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteHeadOrdered is BenchmarkWriteHead with the fields' order
// given, as the gateway gives it (RoundTripOrder): no sort.
func BenchmarkWriteHeadOrdered(b *testing.B) {
	req := benchRequest(b)
	order := []string{"User-Agent", "Accept", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}
	var buf bytes.Buffer
	buf.Grow(bufSize)
	b.ReportAllocs()
	for b.Loop() {
		h, err := appendHead(buf.Bytes()[:0], req, order, false)
		if err != nil || len(h) == 0 {
			b.Fatal(err)
		}
	}
}
