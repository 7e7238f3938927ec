package client

// A fake server speaking raw frames, for the hostile and unusual cases.

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rframe is a frame the client sent, copied out of the framer (whose
// frames are only valid until the next read).
type rframe struct {
	typ       http2.FrameType
	streamID  uint32
	endStream bool
	ack       bool
	data      []byte              // DATA payload
	fields    []hpack.HeaderField // HEADERS
	code      http2.ErrCode       // RST_STREAM, GOAWAY
	lastID    uint32              // GOAWAY
	increment uint32              // WINDOW_UPDATE
	settings  []http2.Setting     // SETTINGS
	ping      [8]byte
}

func copyFrame(fr http2.Frame) rframe {
	h := fr.Header()
	r := rframe{typ: h.Type, streamID: h.StreamID}
	switch f := fr.(type) {
	case *http2.DataFrame:
		r.data = append([]byte(nil), f.Data()...)
		r.endStream = f.StreamEnded()
	case *http2.MetaHeadersFrame:
		r.fields = f.Fields
		r.endStream = f.StreamEnded()
	case *http2.RSTStreamFrame:
		r.code = f.ErrCode
	case *http2.GoAwayFrame:
		r.code, r.lastID = f.ErrCode, f.LastStreamID
	case *http2.WindowUpdateFrame:
		r.increment = f.Increment
	case *http2.SettingsFrame:
		r.ack = f.IsAck()
		f.ForeachSetting(func(s http2.Setting) error { r.settings = append(r.settings, s); return nil })
	case *http2.PingFrame:
		r.ack, r.ping = f.IsAck(), f.Data
	}
	return r
}

// field returns a header field's value.
func (r rframe) field(name string) string {
	for _, f := range r.fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

type fakeServer struct {
	t    testing.TB
	nc   net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	ebuf bytes.Buffer
	got  chan rframe // frames from the client; closed when it stops
}

// newFake returns the client's end of a pipe and a fake server on the
// other end that has read the client preface. A goroutine reads the
// client's frames into f.got until the pipe closes.
func newFake(t testing.TB) (net.Conn, *fakeServer) {
	t.Helper()
	cn, sn := net.Pipe()
	f := &fakeServer{t: t, nc: sn, got: make(chan rframe, 1<<16)}
	f.fr = http2.NewFramer(sn, sn)
	f.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	f.enc = hpack.NewEncoder(&f.ebuf)
	t.Cleanup(func() { sn.Close() })
	go func() {
		defer close(f.got)
		var pre [len(http2.ClientPreface)]byte
		if _, err := io.ReadFull(sn, pre[:]); err != nil || string(pre[:]) != http2.ClientPreface {
			return
		}
		for {
			fr, err := f.fr.ReadFrame()
			if err != nil {
				return
			}
			f.got <- copyFrame(fr)
		}
	}()
	return cn, f
}

// start returns a client connection to a fake server that sent settings.
func start(t testing.TB, cfg Config, settings ...http2.Setting) (*Conn, *fakeServer) {
	t.Helper()
	cn, f := newFake(t)
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := NewConn(ctx, cn, cfg)
		ch <- res{c, err}
	}()
	if err := f.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() {
		r.c.Close()
		<-r.c.Done()
	})
	return r.c, f
}

// next returns the next frame from the client for which keep is true,
// skipping the others.
func (f *fakeServer) next(keep func(rframe) bool) rframe {
	f.t.Helper()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for {
		select {
		case r, ok := <-f.got:
			if !ok {
				f.t.Fatal("client connection closed")
			}
			if keep == nil || keep(r) {
				return r
			}
		case <-timeout.C:
			f.t.Fatal("no frame from the client")
		}
	}
}

func isType(t http2.FrameType) func(rframe) bool {
	return func(f rframe) bool { return f.typ == t }
}

// headers waits for the client's next HEADERS frame.
func (f *fakeServer) headers() rframe {
	f.t.Helper()
	return f.next(isType(http2.FrameHeaders))
}

// goAway waits for the client's GOAWAY.
func (f *fakeServer) goAway() rframe {
	f.t.Helper()
	return f.next(isType(http2.FrameGoAway))
}

// rst waits for the client's RST_STREAM.
func (f *fakeServer) rst() rframe {
	f.t.Helper()
	return f.next(isType(http2.FrameRSTStream))
}

// block encodes header fields, name then value.
func (f *fakeServer) block(kv ...string) []byte {
	f.ebuf.Reset()
	for i := 0; i < len(kv); i += 2 {
		f.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), f.ebuf.Bytes()...)
}

func (f *fakeServer) writeHeaders(id uint32, end bool, kv ...string) error {
	return f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: f.block(kv...), EndStream: end, EndHeaders: true})
}

// roundTrip runs a RoundTrip in a goroutine; the result comes on the
// channel.
type rtResult struct {
	resp *http.Response
	err  error
}

func goRoundTrip(c *Conn, req *http.Request) chan rtResult {
	ch := make(chan rtResult, 1)
	go func() {
		resp, err := c.RoundTrip(req)
		ch <- rtResult{resp, err}
	}()
	return ch
}

func get(ctx context.Context) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://backend/slow", nil)
	return req
}

func wait[T any](t testing.TB, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
	}
	panic("unreachable")
}
