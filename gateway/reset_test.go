package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sluice-gw/sluice/upstream"
)

func TestResetWindow(t *testing.T) {
	sec := int64(time.Second)
	tests := []struct {
		name  string
		cfg   int     // Config.ResetLimit
		times []int64 // reset times, ns
		over  bool    // the last one goes over the limit
	}{
		{"limit in one window", 0, spread(0, rapidResetLimit, sec/2), false},
		{"one more in the window", 0, spread(0, rapidResetLimit+1, sec/2), true},
		{"spread over windows", 0, append(spread(0, rapidResetLimit, sec/2), spread(2*sec, rapidResetLimit, sec/2)...), false},
		{"configured limit", 10, spread(0, 11, sec/2), true},
		{"configured limit, within", 10, spread(0, 10, sec/2), false},
		{"no limit", -1, spread(0, 100*rapidResetLimit, sec/2), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &Gateway{cfg: Config{ResetLimit: tt.cfg}}
			w := resetWindow{limit: g.resetLimit()}
			w.start = -10 * sec
			var over bool
			for _, now := range tt.times {
				over = w.add(now, 1)
			}
			if over != tt.over {
				t.Errorf("over = %v, want %v", over, tt.over)
			}
		})
	}
}

// floodResets sends HEADERS+RST_STREAM pairs on c, an HTTP/2 connection
// not yet begun, until the server closes it (or 20,000 pairs), and fails
// the test unless it was closed.
func floodResets(t *testing.T, c net.Conn) (streams int) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	bw := bufio.NewWriter(c)
	fr := http2.NewFramer(bw, c)
	bw.WriteString(http2.ClientPreface)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			if _, err := fr.ReadFrame(); err != nil {
				return
			}
		}
	}()
	for id := uint32(1); id < 2*20000; id += 2 {
		err1 := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
		err2 := fr.WriteRSTStream(id, http2.ErrCodeCancel)
		if err1 != nil || err2 != nil || bw.Flush() != nil {
			break
		}
		streams++
		select {
		case <-closed:
			id = 1 << 30
		default:
		}
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("connection still open after %d reset streams", streams)
	}
	return streams
}

// TestH2FramesCountsResets: RST_STREAM frames are counted however the
// stream of frames is cut into reads, and only they are.
func TestH2FramesCountsResets(t *testing.T) {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	want := 0
	for id := uint32(1); id < 200; id += 2 {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte("\x82\x86\x84"), EndHeaders: true})
		fr.WriteData(id, true, bytes.Repeat([]byte{byte(frameRSTStream)}, int(id%40))) // payload bytes that look like the type
		if id%3 == 0 {
			fr.WriteRSTStream(id, http2.ErrCodeCancel)
			want++
		}
		fr.WritePing(false, [8]byte{3, 3, 3, 3, 3, 3, 3, 3})
	}
	stream := buf.Bytes()
	for _, size := range []int{1, 2, 5, 9, 10, 17, 4096, len(stream)} {
		var f h2Frames
		got := 0
		for p := stream; len(p) > 0; {
			n := min(size, len(p))
			got += f.scan(p[:n])
			p = p[n:]
		}
		if got != want || f.skip != 0 || f.nhdr != 0 {
			t.Errorf("reads of %d bytes: %d resets (skip %d, partial header %d), want %d", size, got, f.skip, f.nhdr, want)
		}
	}
}

// spread is n times from start, evenly over d.
func spread(start int64, n int, d int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = start + d*int64(i)/int64(n)
	}
	return out
}

// TestRapidResetClosesConnection: a client resetting every stream right
// after opening it is disconnected within a few hundred streams, counted as
// rapid_reset, and the origin sees (almost) none of them; other clients
// carry on.
func TestRapidResetClosesConnection(t *testing.T) {
	var seen atomic.Int64
	origin := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { seen.Add(1); io.WriteString(w, "ok") })
	b := newBackend(t, upstream.Config{
		Protocol: upstream.H2C,
		Servers:  []upstream.ServerConfig{{Address: origin}},
		Queue:    upstream.QueueConfig{MaxPending: 1000, Timeout: 5 * time.Second},
	})
	g, err := New(Config{Routes: []Route{{Backend: "b"}}}, map[string]http.RoundTripper{"b": b}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	addr := listenAndServe(t, g, ListenerConfig{Addr: "127.0.0.1:0"})

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	streams := floodResets(t, c)
	if got := testutil.ToFloat64(g.m.rejected.WithLabelValues(reasonRapidReset)); got != 1 {
		t.Errorf("sluice_client_rejected_total{reason=rapid_reset} = %v, want 1", got)
	}
	t.Logf("flood of %d streams written; origin saw %d", streams, seen.Load())

	// Another client on its own connection is served.
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Protocols: &p}}
	resp, err := hc.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Errorf("normal client: %s %d", resp.Proto, resp.StatusCode)
	}
}
