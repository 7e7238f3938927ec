package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/http2"
)

// noFrame fails if the client sent a frame of type typ since the last
// look; everything else it sent is dropped.
func (f *fakeServer) noFrame(typ http2.FrameType) {
	f.t.Helper()
	for {
		select {
		case r := <-f.got:
			if r.typ == typ {
				f.t.Fatalf("client sent %v on stream %d", typ, r.streamID)
			}
		default:
			return
		}
	}
}

// readData reads the client's DATA on stream id until n bytes came.
func (f *fakeServer) readData(id uint32, n int) (got []byte, end bool) {
	f.t.Helper()
	for len(got) < n {
		r := f.next(func(r rframe) bool { return r.typ == http2.FrameData && r.streamID == id })
		got = append(got, r.data...)
		end = r.endStream
	}
	if len(got) > n {
		f.t.Fatalf("client sent %d bytes, window allowed %d", len(got), n)
	}
	return got, end
}

// TestDataBeyondWindow: DATA over the stream's window resets the stream
// with FLOW_CONTROL_ERROR.
func TestDataBeyondWindow(t *testing.T) {
	c, f := start(t, Config{StreamWindow: 1000})
	rt := goRoundTrip(c, get(context.Background()))
	id := f.headers().streamID
	f.writeHeaders(id, false, ":status", "200")
	res := wait(t, rt)
	if res.err != nil {
		t.Fatal(res.err)
	}
	f.fr.WriteData(id, false, make([]byte, 1001))
	if r := f.rst(); r.streamID != id || r.code != http2.ErrCodeFlowControl {
		t.Fatalf("RST_STREAM %d %v, want FLOW_CONTROL_ERROR", r.streamID, r.code)
	}
	_, err := io.ReadAll(res.resp.Body)
	var se *StreamError
	if !errors.As(err, &se) || se.Code != http2.ErrCodeFlowControl {
		t.Fatalf("body error %v", err)
	}
}

// TestInitialWindowSizeChanges: INITIAL_WINDOW_SIZE at 0, raised, then
// shrunk below what is in flight, applies to the open stream each time.
func TestInitialWindowSizeChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, f := start(t, Config{}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
		f.fr.WriteWindowUpdate(0, 1<<20)
		body := bytes.Repeat([]byte("0123456789"), 20000)
		req, _ := http.NewRequest("POST", "http://backend/", bytes.NewReader(body))
		rt := goRoundTrip(c, req)
		id := f.headers().streamID
		synctest.Wait()
		f.noFrame(http2.FrameData) // window 0

		f.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100000})
		got, _ := f.readData(id, 100000)
		synctest.Wait()
		f.noFrame(http2.FrameData)

		// Shrink by 50000: the window goes to -50000, so a 50000 update
		// opens nothing.
		f.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 50000})
		f.fr.WriteWindowUpdate(id, 50000)
		synctest.Wait()
		f.noFrame(http2.FrameData)

		f.fr.WriteWindowUpdate(id, 100000)
		rest, end := f.readData(id, 100000)
		if !end || !bytes.Equal(append(got, rest...), body) {
			t.Fatalf("body mismatch, end %v", end)
		}
		f.writeHeaders(id, true, ":status", "200")
		if res := wait(t, rt); res.err != nil {
			t.Fatal(res.err)
		}
	})
}

// TestMaxConcurrentStreamsLowered: the server lowers its limit to 1 with
// three streams in flight; a new request waits until all have ended.
func TestMaxConcurrentStreamsLowered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, f := start(t, Config{}, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 3})
		var rts []chan rtResult
		var ids []uint32
		for range 3 {
			rts = append(rts, goRoundTrip(c, get(context.Background())))
			ids = append(ids, f.headers().streamID)
		}
		if c.Available() != 0 || c.Reserve() == nil {
			t.Fatalf("Available %d with 3 of 3 streams in flight", c.Available())
		}
		f.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
		f.next(func(r rframe) bool { return r.typ == http2.FrameSettings && r.ack })
		fourth := goRoundTrip(c, get(context.Background()))
		for i, id := range ids {
			synctest.Wait()
			f.noFrame(http2.FrameHeaders)
			if c.Available() != 0 {
				t.Fatalf("Available %d with %d streams in flight, limit 1", c.Available(), 3-i)
			}
			f.writeHeaders(id, true, ":status", "200")
			if res := wait(t, rts[i]); res.err != nil {
				t.Fatal(res.err)
			}
		}
		id := f.headers().streamID
		f.writeHeaders(id, true, ":status", "200")
		if res := wait(t, fourth); res.err != nil {
			t.Fatal(res.err)
		}
	})
}

// TestSlowStreamDoesNotStallOthers: a response nobody reads fills its
// own window only; another stream on the connection moves megabytes
// meanwhile, with connection and stream windows of 64 KiB.
func TestSlowStreamDoesNotStallOthers(t *testing.T) {
	addr := newH2CServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 1 << 20
		if r.URL.Path == "/fast" {
			n = 8 << 20
		}
		w.Write(make([]byte, n))
	}))
	c := dialTest(t, addr, Config{ConnWindow: 65535, StreamWindow: 65535})
	slow, err := c.RoundTrip(get(context.Background()).WithContext(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/fast", nil)
	fast, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, fast.Body)
	fast.Body.Close()
	if err != nil || n != 8<<20 {
		t.Fatalf("fast stream: %d bytes, %v", n, err)
	}
	n, err = io.Copy(io.Discard, slow.Body)
	if err != nil || n != 1<<20 {
		t.Fatalf("slow stream: %d bytes, %v", n, err)
	}
}
