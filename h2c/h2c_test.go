package h2c

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	settings := []byte{0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100}
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"settings", settings, true},
		{"http1 answer", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), false},
		{"short http1", []byte("HTTP/1"), false},
		{"closed", nil, false},
		{"goaway first", []byte{0, 0, 8, 0x7, 0, 0, 0, 0, 0}, false},
		{"settings on a stream", []byte{0, 0, 0, 0x4, 0, 0, 0, 0, 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := classify(bytes.NewReader(tt.in), "x")
			if err != nil || got != tt.want {
				t.Errorf("classify = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func FuzzClassify(f *testing.F) {
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n"))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		classify(bytes.NewReader(b), "x")
	})
}

// TestWatchSeesSettingsAckAcrossWrites feeds the client's byte stream in
// every split, as bufio may cut it anywhere.
func TestWatchSeesSettingsAckAcrossWrites(t *testing.T) {
	var stream []byte
	stream = append(stream, clientPreface[:24]...)
	stream = append(stream, 0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0) // SETTINGS
	stream = append(stream, 0, 0, 4, 0x8, 0, 0, 0, 0, 0, 0, 1, 0, 0)       // WINDOW_UPDATE
	stream = append(stream, 0, 0, 0, 0x4, 0x1, 0, 0, 0, 0)                 // SETTINGS ACK
	for cut := 1; cut < len(stream); cut++ {
		w := &settingsWatch{acked: make(chan struct{}), closed: make(chan struct{})}
		c := &watchedConn{w: w}
		c.scan(stream[:cut])
		if c.done.Load() && cut < len(stream) {
			t.Fatalf("cut %d: ack seen early", cut)
		}
		c.scan(stream[cut:])
		if !c.done.Load() {
			t.Fatalf("cut %d: ack not seen", cut)
		}
	}
}

func FuzzWatch(f *testing.F) {
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x01\x00\x00\x00\x00"), 3)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		c := &watchedConn{w: &settingsWatch{acked: make(chan struct{}), closed: make(chan struct{})}}
		if cut < 0 || cut > len(b) {
			cut = len(b) / 2
		}
		c.scan(b[:cut])
		if !c.done.Load() {
			c.scan(b[cut:])
		}
	})
}

func TestProbe(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(h2)
		srv.Config.Protocols = &p
		srv.Start()
		got, err := Probe(context.Background(), srv.Listener.Addr().String(), time.Second)
		srv.Close()
		if err != nil || got != h2 {
			t.Errorf("h2c=%v: Probe = %v, %v", h2, got, err)
		}
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Probe(context.Background(), addr, time.Second); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("probe of a closed port: %v", err)
	}
}

func TestDialWaitsForSettings(t *testing.T) {
	// A server that accepts and says nothing.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, NewTransport(Config{}), ln.Addr().String(), nil); err == nil {
		t.Fatal("dial to a silent server succeeded")
	}
}

// TestDialFailsFastWhenServerCloses: a server that closes or resets the
// connection before its SETTINGS fails the dial at once, not at the
// connect timeout.
func TestDialFailsFastWhenServerCloses(t *testing.T) {
	for _, tt := range []struct {
		name  string
		reset bool
	}{{"close", false}, {"reset", true}} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					if tt.reset {
						c.(*net.TCPConn).SetLinger(0)
					}
					c.Close()
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, err = Dial(ctx, NewTransport(Config{}), ln.Addr().String(), nil)
			if err == nil {
				t.Fatal("dial to a closing server succeeded")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("dial failed after %v (%v), want well under the 10s connect timeout", d, err)
			}
		})
	}
}
