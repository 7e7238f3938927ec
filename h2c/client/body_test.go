package client

import (
	"bytes"
	"context"
	"io"
	"testing"

	"golang.org/x/net/http2"
)

// TestBodyEOFWithLastBytes: a body whose END_STREAM has arrived returns
// io.EOF with its last bytes, so a small response takes one Read; a Read
// after it reports the body closed, as after a separate EOF.
func TestBodyEOFWithLastBytes(t *testing.T) {
	c, f := start(t, Config{})
	rt := goRoundTrip(c, get(context.Background()))
	id := f.headers().streamID
	f.writeHeaders(id, false, ":status", "200")
	if err := f.fr.WriteData(id, true, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	res := wait(t, rt)
	if res.err != nil {
		t.Fatal(res.err)
	}
	// Wait until the stream has ended: the request slot is freed then.
	for {
		c.mu.Lock()
		s := (*stream)(res.resp.Body.(*Body))
		ended := s.endRecv
		c.mu.Unlock()
		if ended {
			break
		}
		<-s.wake
	}
	buf := make([]byte, 64)
	n, err := res.resp.Body.Read(buf)
	if string(buf[:n]) != "hello" || err != io.EOF {
		t.Fatalf("Read: %q, %v; want \"hello\", io.EOF", buf[:n], err)
	}
	if n := c.InFlight(); n != 0 {
		t.Fatalf("InFlight %d after the body's end", n)
	}
	if _, err := res.resp.Body.Read(buf); err != errBodyClosed {
		t.Fatalf("Read after EOF: %v, want errBodyClosed", err)
	}
}

// TestOneWakeForHeadersAndData: a response whose HEADERS and DATA with
// END_STREAM arrive in one read wakes its caller once, and the caller
// finds it complete: RoundTrip returns with the body buffered and the
// stream ended, and reading it needs no further wait.
func TestOneWakeForHeadersAndData(t *testing.T) {
	c, f := start(t, Config{})
	rt := goRoundTrip(c, get(context.Background()))
	id := f.headers().streamID
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: f.block(":status", "200", "content-length", "5"), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteData(id, true, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	before := c.readerSignals.Load()
	if _, err := f.nc.Write(buf.Bytes()); err != nil { // one write: one read on the pipe
		t.Fatal(err)
	}
	res := wait(t, rt)
	if res.err != nil {
		t.Fatal(res.err)
	}
	s := (*stream)(res.resp.Body.(*Body))
	c.mu.Lock()
	ended := s.endRecv
	c.mu.Unlock()
	if !ended {
		t.Fatal("RoundTrip returned before the DATA read with the HEADERS was handled")
	}
	if n := c.readerSignals.Load() - before; n != 1 {
		t.Fatalf("%d wake-ups for HEADERS and DATA read together, want 1", n)
	}
	body, err := io.ReadAll(res.resp.Body)
	if string(body) != "hello" || err != nil {
		t.Fatalf("body %q, %v", body, err)
	}
}
