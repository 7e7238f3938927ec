package upstream

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// fakePeer is an h2c server speaking raw frames, so tests can make it refuse
// streams, send GOAWAY at a chosen point, ignore PINGs or drop connections
// mid-request: things a real server does only under duress.
type fakePeer struct {
	ln    net.Listener
	conns atomic.Int32
	wg    sync.WaitGroup

	// onHeaders handles a request's HEADERS frame (end of headers). Nil
	// answers 200 "ok".
	onHeaders func(pc *peerConn, streamID uint32, method string)
	// onData, if set, sees each DATA frame (the peer returns no flow
	// control credit of its own accord).
	onData func(pc *peerConn, f *http2.DataFrame)
	// ignorePing leaves PINGs unanswered.
	ignorePing atomic.Bool

	mu   sync.Mutex // guards open
	open []net.Conn
}

// peerConn is one connection of the fake peer.
type peerConn struct {
	idx int32 // 1 for the first connection
	c   net.Conn
	mu  sync.Mutex // guards fr, enc, hbuf
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func newFakePeer(t *testing.T) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fp := &fakePeer{ln: ln}
	fp.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fp.mu.Lock()
			fp.open = append(fp.open, c)
			fp.mu.Unlock()
			fp.wg.Go(func() { fp.serve(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		fp.mu.Lock()
		for _, c := range fp.open {
			c.Close()
		}
		fp.mu.Unlock()
		fp.wg.Wait()
	})
	return fp
}

func (fp *fakePeer) addr() string { return fp.ln.Addr().String() }

func (fp *fakePeer) serve(c net.Conn) {
	defer c.Close()
	pc := &peerConn{idx: fp.conns.Add(1), c: c}
	pc.fr = http2.NewFramer(c, c)
	pc.enc = hpack.NewEncoder(&pc.hb)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil {
		return
	}
	pc.mu.Lock()
	pc.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	pc.mu.Unlock()
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := pc.fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				pc.mu.Lock()
				pc.fr.WriteSettingsAck()
				pc.mu.Unlock()
			}
		case *http2.PingFrame:
			if !f.IsAck() && !fp.ignorePing.Load() {
				pc.mu.Lock()
				pc.fr.WritePing(true, f.Data)
				pc.mu.Unlock()
			}
		case *http2.DataFrame:
			if fp.onData != nil {
				fp.onData(pc, f)
			}
		case *http2.HeadersFrame:
			fields, _ := dec.DecodeFull(f.HeaderBlockFragment())
			method := ""
			for _, hf := range fields {
				if hf.Name == ":method" {
					method = hf.Value
				}
			}
			if fp.onHeaders != nil {
				fp.onHeaders(pc, f.StreamID, method)
			} else {
				pc.respond(f.StreamID, 200, "ok")
			}
		}
	}
}

func (pc *peerConn) respond(streamID uint32, status int, body string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.hb.Reset()
	pc.enc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(status)})
	pc.enc.WriteField(hpack.HeaderField{Name: "x-conn", Value: strconv.Itoa(int(pc.idx))})
	pc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: streamID, BlockFragment: pc.hb.Bytes(), EndHeaders: true})
	pc.fr.WriteData(streamID, true, []byte(body))
}

func (pc *peerConn) refuse(streamID uint32) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.fr.WriteRSTStream(streamID, http2.ErrCodeRefusedStream)
}

func (pc *peerConn) goAway(last uint32) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.fr.WriteGoAway(last, http2.ErrCodeNo, nil)
}
