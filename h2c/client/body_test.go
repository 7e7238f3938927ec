package client

import (
	"context"
	"io"
	"testing"
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
