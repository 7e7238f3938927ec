package client

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// newCannedServer runs an h2c server on loopback that answers every
// request with the same prebuilt HEADERS and DATA frames, allocating
// nothing per request, so that allocations measured by a benchmark are
// the client's.
func newCannedServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	var hb, resp bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":status", "200"}, {"content-type", "text/plain"}, {"cache-control", "no-cache"}, {"content-length", "12"}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1], Sensitive: true})
	}
	fr := http2.NewFramer(&resp, nil)
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	hdrLen := resp.Len()
	fr.WriteData(1, true, []byte("hello, world"))
	canned := resp.Bytes()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveCanned(c, canned, hdrLen)
		}
	}()
	return ln.Addr().String()
}

func serveCanned(c net.Conn, canned []byte, hdrLen int) {
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	br := bufio.NewReaderSize(c, 64<<10)
	fr := http2.NewFramer(c, br)
	fr.SetReuseFrames()
	fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1000})
	out := make([]byte, 0, 64<<10)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			id := f.StreamID
			start := len(out)
			out = append(out, canned...)
			for _, at := range []int{start + 5, start + hdrLen + 5} {
				out[at], out[at+1], out[at+2], out[at+3] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
			}
		}
		// Answer in batches: flush when the client has nothing more
		// buffered for us.
		if len(out) > 0 && br.Buffered() == 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}
