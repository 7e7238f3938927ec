package client

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/net/http2"
)

// rawFrame writes a frame header and payload as given, for frames the
// framer would refuse to write.
func (f *fakeServer) rawFrame(typ http2.FrameType, flags http2.Flags, id uint32, payload []byte) error {
	var h [9]byte
	h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	h[3], h[4] = byte(typ), byte(flags)
	binary.BigEndian.PutUint32(h[5:], id)
	_, err := f.nc.Write(append(h[:], payload...))
	return err
}

// TestHeadersFramePaddingAndPriority: the client reads HEADERS frames
// itself (block.go): padding and the priority fields are skipped, the
// block between them decoded, over CONTINUATION frames too.
func TestHeadersFramePaddingAndPriority(t *testing.T) {
	c, f := start(t, Config{})
	rt := goRoundTrip(c, get(context.Background()))
	id := f.headers().streamID
	block := f.block(":status", "200", "x-a", "1", "x-b", "two")
	// PADDED and PRIORITY: pad length 3, stream dependency and weight,
	// the first half of the block, 3 bytes of padding.
	payload := append([]byte{3, 0, 0, 0, 0, 16}, block[:4]...)
	payload = append(payload, 0, 0, 0)
	if err := f.rawFrame(http2.FrameHeaders, http2.FlagHeadersPadded|http2.FlagHeadersPriority|http2.FlagHeadersEndStream, id, payload); err != nil {
		t.Fatal(err)
	}
	if err := f.fr.WriteContinuation(id, true, block[4:]); err != nil {
		t.Fatal(err)
	}
	res := wait(t, rt)
	if res.err != nil {
		t.Fatal(res.err)
	}
	if res.resp.StatusCode != 200 || res.resp.Header.Get("X-A") != "1" || res.resp.Header.Get("X-B") != "two" {
		t.Fatalf("response %d %v", res.resp.StatusCode, res.resp.Header)
	}
}

// TestMalformedHeaderFrames: a HEADERS or CONTINUATION frame the client
// cannot parse, or a block it cannot decode, ends the connection with
// GOAWAY and the matching code; the request fails with it.
func TestMalformedHeaderFrames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(f *fakeServer, id uint32) error
		code  http2.ErrCode
	}{
		{"padding longer than the payload", func(f *fakeServer, id uint32) error {
			return f.rawFrame(http2.FrameHeaders, http2.FlagHeadersPadded|http2.FlagHeadersEndHeaders, id, []byte{5, 0x88})
		}, http2.ErrCodeProtocol},
		{"padded without a pad length", func(f *fakeServer, id uint32) error {
			return f.rawFrame(http2.FrameHeaders, http2.FlagHeadersPadded|http2.FlagHeadersEndHeaders, id, nil)
		}, http2.ErrCodeFrameSize},
		{"priority cut short", func(f *fakeServer, id uint32) error {
			return f.rawFrame(http2.FrameHeaders, http2.FlagHeadersPriority|http2.FlagHeadersEndHeaders, id, []byte{0, 0, 0})
		}, http2.ErrCodeFrameSize},
		{"HEADERS on stream 0", func(f *fakeServer, id uint32) error {
			return f.rawFrame(http2.FrameHeaders, http2.FlagHeadersEndHeaders, 0, []byte{0x88})
		}, http2.ErrCodeProtocol},
		{"invalid HPACK index", func(f *fakeServer, id uint32) error {
			return f.rawFrame(http2.FrameHeaders, http2.FlagHeadersEndHeaders, id, []byte{0x88, 0x80 | 70})
		}, http2.ErrCodeCompression},
		{"block ending inside a field", func(f *fakeServer, id uint32) error {
			return f.rawFrame(http2.FrameHeaders, http2.FlagHeadersEndHeaders, id, []byte{0x88, 0x00, 0x05, 'x'})
		}, http2.ErrCodeCompression},
		{"table size update above 4096", func(f *fakeServer, id uint32) error {
			return f.rawFrame(http2.FrameHeaders, http2.FlagHeadersEndHeaders, id, []byte{0x3f, 0xe2, 0x1f, 0x88})
		}, http2.ErrCodeCompression},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := start(t, Config{})
			rt := goRoundTrip(c, get(context.Background()))
			id := f.headers().streamID
			if err := tc.write(f, id); err != nil {
				t.Fatal(err)
			}
			if g := f.goAway(); g.code != tc.code {
				t.Fatalf("GOAWAY %v, want %v", g.code, tc.code)
			}
			res := wait(t, rt)
			var ce *ConnError
			if !errors.As(res.err, &ce) || ce.Code != tc.code {
				t.Fatalf("RoundTrip error %v, want a %v ConnError", res.err, tc.code)
			}
		})
	}
}

// TestDynamicTableAcrossResponses: fields the server indexed in one
// response are found in the next; a size update to 0 at a block's start
// empties the table, after which an index into it is a connection error.
func TestDynamicTableAcrossResponses(t *testing.T) {
	c, f := start(t, Config{})
	for i := range 3 {
		rt := goRoundTrip(c, get(context.Background()))
		id := f.headers().streamID
		// x/net's encoder indexes both: the second response sends
		// them as indices into the dynamic table.
		f.writeHeaders(id, true, ":status", "200", "x-session", "abc")
		res := wait(t, rt)
		if res.err != nil || res.resp.Header.Get("X-Session") != "abc" {
			t.Fatalf("response %d: %v %v", i, res.err, res.resp)
		}
	}
	rt := goRoundTrip(c, get(context.Background()))
	id := f.headers().streamID
	// Size update to 0, :status 200, then index 62: gone.
	if err := f.rawFrame(http2.FrameHeaders, http2.FlagHeadersEndHeaders, id, []byte{0x20, 0x88, 0x80 | 62}); err != nil {
		t.Fatal(err)
	}
	if g := f.goAway(); g.code != http2.ErrCodeCompression {
		t.Fatalf("GOAWAY %v, want COMPRESSION_ERROR", g.code)
	}
	wait(t, rt)
}
