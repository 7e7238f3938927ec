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
