package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// seedFrames builds server bytes for stream 1 with the framer.
func seedFrames(write func(fr *http2.Framer, block func(kv ...string) []byte)) []byte {
	var buf, hb bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	enc := hpack.NewEncoder(&hb)
	write(fr, func(kv ...string) []byte {
		hb.Reset()
		for i := 0; i < len(kv); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	})
	return buf.Bytes()
}

// FuzzServerFrames feeds arbitrary server bytes to a connection with one
// request in flight: whatever they are, nothing may panic or hang, and
// every goroutine must end.
func FuzzServerFrames(f *testing.F) {
	f.Add(seedFrames(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "200", "content-length", "5"), EndHeaders: true})
		fr.WriteData(1, false, []byte("hel"))
		fr.WriteData(1, true, []byte("lo"))
	}))
	f.Add(seedFrames(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "103", "link", "<x>"), EndHeaders: true})
		b := block(":status", "200", "trailer", "x-t")
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:2]})
		fr.WriteContinuation(1, true, b[2:])
		fr.WriteData(1, false, []byte("body"))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("x-t", "v"), EndHeaders: true, EndStream: true})
	}))
	f.Add(seedFrames(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
		fr.WriteWindowUpdate(0, 1000)
		fr.WritePing(false, [8]byte{1})
		fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
		fr.WriteGoAway(0, http2.ErrCodeEnhanceYourCalm, []byte("calm"))
	}))
	f.Add(seedFrames(func(fr *http2.Framer, block func(...string) []byte) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "200")})
		for range 50 {
			fr.WriteContinuation(1, false, block("x-a", strings.Repeat("a", 300)))
		}
	}))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a failure: report every goroutine's stack.
		wd := time.AfterFunc(10*time.Second, func() {
			buf := make([]byte, 1<<20)
			panic(fmt.Sprintf("hang on input %x:\n%s", data, buf[:runtime.Stack(buf, true)]))
		})
		defer wd.Stop()
		cn, sn := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			defer sn.Close()
			if _, err := io.ReadFull(sn, make([]byte, len(http2.ClientPreface))); err != nil {
				return
			}
			fr := http2.NewFramer(sn, sn)
			if fr.WriteSettings() != nil {
				return
			}
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					return
				}
				if f.Header().Type == http2.FrameHeaders {
					break
				}
			}
			go io.Copy(io.Discard, sn)
			sn.Write(data)
		}()
		// The handshake gets time even on a loaded machine; the request
		// gives up soon, as the bytes may never answer it.
		hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer hcancel()
		c, err := NewConn(hctx, cn, Config{MaxHeaderListSize: 8 << 10, ExpectContinueTimeout: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		resp, err := c.RoundTrip(get(ctx))
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		c.Close()
		<-c.Done()
		<-served
	})
}
