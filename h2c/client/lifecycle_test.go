package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/http2"
)

// dialFake runs NewConn against a fake server that does what serve says.
func dialFake(t *testing.T, cfg Config, timeout time.Duration, serve func(f *fakeServer)) (*Conn, error) {
	cn, f := newFake(t)
	go serve(f)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return NewConn(ctx, cn, cfg)
}

func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(f *fakeServer)
		want  time.Duration // how long NewConn takes, in the bubble's time
		code  http2.ErrCode
	}{
		{"SETTINGS never sent", func(f *fakeServer) {}, 5 * time.Second, 0},
		{"closed before SETTINGS", func(f *fakeServer) { f.nc.Close() }, 0, 0},
		{"PING before SETTINGS", func(f *fakeServer) { f.fr.WritePing(false, [8]byte{}) }, 0, http2.ErrCodeProtocol},
		{"HTTP/1.1 answer", func(f *fakeServer) { f.nc.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				c, err := dialFake(t, Config{}, 5*time.Second, tc.serve)
				if c != nil || !errors.Is(err, ErrNoSettings) {
					t.Fatalf("NewConn: %v", err)
				}
				if took := time.Since(start); took != tc.want {
					t.Fatalf("NewConn took %v, want %v", took, tc.want)
				}
				var ce *ConnError
				if tc.code != 0 && (!errors.As(err, &ce) || ce.Code != tc.code) {
					t.Fatalf("error %v, want code %v", err, tc.code)
				}
			})
		})
	}
}

// TestServerClosesBetweenFrames: every stream fails, the connection
// reports its error and its goroutines end.
func TestServerClosesBetweenFrames(t *testing.T) {
	c, f := start(t, Config{})
	rt := goRoundTrip(c, get(context.Background()))
	id := f.headers().streamID
	f.writeHeaders(id, false, ":status", "200")
	f.fr.WriteData(id, false, []byte("some"))
	res := wait(t, rt)
	waiting := goRoundTrip(c, get(context.Background()))
	f.headers()
	f.nc.Close()
	b, err := io.ReadAll(res.resp.Body)
	if string(b) != "some" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("body %q, %v", b, err)
	}
	if r := wait(t, waiting); !errors.Is(r.err, io.ErrUnexpectedEOF) {
		t.Fatalf("waiting request: %v", r.err)
	}
	<-c.Done()
	if c.Err() == nil || c.Available() != 0 || c.InFlight() != 0 {
		t.Fatalf("Err %v Available %d InFlight %d", c.Err(), c.Available(), c.InFlight())
	}
}

// TestPingFlood: every PING is answered, the connection keeps working.
func TestPingFlood(t *testing.T) {
	c, f := start(t, Config{})
	const n = 20000
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		for i := range n {
			if f.fr.WritePing(false, [8]byte{byte(i), byte(i >> 8)}) != nil {
				return
			}
		}
	}()
	for i := range n {
		r := f.next(isType(http2.FramePing))
		if !r.ack || r.ping != [8]byte{byte(i), byte(i >> 8)} {
			t.Fatalf("PING %d answered with %v", i, r.ping)
		}
	}
	<-flooded
	rt := goRoundTrip(c, get(context.Background()))
	f.writeHeaders(f.headers().streamID, true, ":status", "200")
	if res := wait(t, rt); res.err != nil {
		t.Fatal(res.err)
	}
}

// TestPingFloodServerNotReading: a server that floods PINGs and reads
// nothing makes the client's writes stall; the write timeout ends the
// connection instead of buffering acks without bound.
func TestPingFloodServerNotReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cn, sn := net.Pipe()
		fr := http2.NewFramer(sn, sn)
		go func() {
			io.ReadFull(sn, make([]byte, len(http2.ClientPreface)))
			fr.WriteSettings()
			// Read nothing more; flood.
			for fr.WritePing(false, [8]byte{1}) == nil {
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := NewConn(ctx, cn, Config{WriteTimeout: 10 * time.Second})
		if err != nil {
			// The ack of SETTINGS is queued, not written: the handshake
			// must succeed.
			t.Fatal(err)
		}
		start := time.Now()
		<-c.Done()
		if took := time.Since(start); took > 11*time.Second {
			t.Fatalf("connection closed after %v", took)
		}
		var ce *ConnError
		if !errors.As(c.Err(), &ce) {
			t.Fatalf("Err %v", c.Err())
		}
		sn.Close()
	})
}

// TestPingLiveness: an idle connection is pinged after PingInterval and
// closed when the PING is not answered within PingTimeout.
func TestPingLiveness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, f := start(t, Config{PingInterval: 30 * time.Second, PingTimeout: 5 * time.Second})
		t0 := time.Now()
		p := f.next(func(r rframe) bool { return r.typ == http2.FramePing && !r.ack })
		if d := time.Since(t0); d != 30*time.Second {
			t.Fatalf("first PING after %v", d)
		}
		if rtt, at := c.PingRTT(); rtt != 0 || !at.IsZero() {
			t.Fatalf("PingRTT before any ACK: %v at %v", rtt, at)
		}
		time.Sleep(7 * time.Millisecond)
		f.fr.WritePing(true, p.ping)
		synctest.Wait()
		if rtt, at := c.PingRTT(); rtt != 7*time.Millisecond || !at.Equal(time.Now()) {
			t.Fatalf("PingRTT %v at %v, want 7ms now", rtt, at)
		}
		t1 := time.Now()
		f.next(func(r rframe) bool { return r.typ == http2.FramePing && !r.ack })
		if d := time.Since(t1); d != 30*time.Second {
			t.Fatalf("second PING after %v", d)
		}
		t2 := time.Now()
		<-c.Done()
		if d := time.Since(t2); d != 5*time.Second || !errors.Is(c.Err(), errPingTimeout) {
			t.Fatalf("closed after %v: %v", d, c.Err())
		}
	})
}

// TestCloseEndsBodyWriter: Close ends a request body writer blocked in
// its body's Read, so every goroutine of the connection ends.
func TestCloseEndsBodyWriter(t *testing.T) {
	c, f := start(t, Config{})
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest("POST", "http://backend/", pr)
	rt := goRoundTrip(c, req)
	f.headers()
	c.Close()
	if res := wait(t, rt); res.err == nil {
		t.Fatal("RoundTrip succeeded on a closed connection")
	}
	wait(t, chanOf(c.Done()))
}

func chanOf(ch <-chan struct{}) chan struct{} {
	out := make(chan struct{})
	go func() {
		<-ch
		close(out)
	}()
	return out
}
