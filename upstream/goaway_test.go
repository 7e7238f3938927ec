package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
	"github.com/sluice-gw/sluice/h2c/client"
)

func TestGoAwayLabels(t *testing.T) {
	tests := []struct {
		code http2.ErrCode
		want string
	}{
		{http2.ErrCodeNo, "no_error"},
		{http2.ErrCodeProtocol, "protocol_error"},
		{http2.ErrCodeInternal, "internal_error"},
		{http2.ErrCodeFlowControl, "flow_control_error"},
		{http2.ErrCodeSettingsTimeout, "settings_timeout"},
		{http2.ErrCodeStreamClosed, "stream_closed"},
		{http2.ErrCodeFrameSize, "frame_size_error"},
		{http2.ErrCodeRefusedStream, "refused_stream"},
		{http2.ErrCodeCancel, "cancel"},
		{http2.ErrCodeCompression, "compression_error"},
		{http2.ErrCodeConnect, "connect_error"},
		{http2.ErrCodeEnhanceYourCalm, "enhance_your_calm"},
		{http2.ErrCodeInadequateSecurity, "inadequate_security"},
		{http2.ErrCodeHTTP11Required, "http_1_1_required"},
		{0xe, "unknown"},
		{0x42, "unknown"},
		{1<<32 - 1, "unknown"},
	}
	for _, tt := range tests {
		if got := goAwayLabels[goAwayIndex(tt.code)]; got != tt.want {
			t.Errorf("code %#x labelled %q, want %q", uint32(tt.code), got, tt.want)
		}
	}
	if len(goAwayLabels) != 15 {
		t.Errorf("%d code label values, want RFC 9113's 14 and unknown", len(goAwayLabels))
	}
}

func TestPrintableDebug(t *testing.T) {
	long := strings.Repeat("x", maxGoAwayDebug)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"none", nil, ""},
		{"tomcat", []byte("A new remote stream ID of [21] was requested but the most recent stream was [201]"),
			"A new remote stream ID of [21] was requested but the most recent stream was [201]"},
		{"controls", []byte("a\x00b\nc\x1b[31m"), "a?b?c?[31m"},
		{"not utf-8", []byte("a\xff\xfeb"), "a??b"},
		{"utf-8 kept", []byte("café"), "café"},
		{"at the limit", []byte(long), long},
		{"cut", []byte(long + "tail"), long + "..."},
	}
	for _, tt := range tests {
		if got := printableDebug(tt.in); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// logLines is a JSON slog handler's output, safe for the connection's
// reader goroutine to write while the test reads it.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// with returns the records whose msg is msg.
func (l *logLines) with(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// loggedBackend is backend "b" of one h2c server at addr, one connection
// to it, with its metrics and JSON log.
func loggedBackend(t *testing.T, addr string) (*Backend, *Metrics, *prometheus.Registry, *logLines) {
	t.Helper()
	logs := &logLines{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	b := newBackendWith(t, Config{
		Name: "b", Protocol: H2C,
		Servers: []ServerConfig{{Address: addr}},
		H2C:     H2CConfig{ConnsPerServer: 1},
		Queue:   QueueConfig{MaxPending: 10},
	}, m, slog.New(slog.NewJSONHandler(logs, nil)))
	return b, m, reg, logs
}

// TestGoAwayLoggedOnce: a server that retires a connection with two
// GOAWAYs (as a graceful shutdown does) gets one log line, at WARN unless
// the code is NO_ERROR, with what tells operators why; the counter counts
// the connection once, under the code's label.
func TestGoAwayLoggedOnce(t *testing.T) {
	tomcat := "A new remote stream ID of [21] was requested but the most recent stream was [201]"
	tests := []struct {
		name      string
		code      http2.ErrCode
		debug     string
		level     string
		codeName  string
		label     string
		wantDebug string
	}{
		{"graceful", http2.ErrCodeNo, "", "INFO", "NO_ERROR", "no_error", ""},
		{"tomcat protocol error", http2.ErrCodeProtocol, tomcat, "WARN", "PROTOCOL_ERROR", "protocol_error", tomcat},
		{"unknown code", 0x42, "\x01bin", "WARN", "unknown error code 0x42", "unknown", "?bin"},
	}
	const reqs = 3
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeak(t)
			fp := newFakePeer(t)
			var mu sync.Mutex
			n := 0
			fp.onHeaders = func(pc *peerConn, id uint32, method string) {
				pc.respond(id, 200, "ok")
				if pc.idx > 1 {
					return
				}
				mu.Lock()
				n++
				last := n == reqs
				mu.Unlock()
				if !last {
					return
				}
				pc.mu.Lock()
				pc.fr.WriteGoAway(1<<31-1, tt.code, []byte(tt.debug))
				pc.fr.WriteGoAway(id, tt.code, []byte(tt.debug))
				pc.mu.Unlock()
				// Closing after both GOAWAYs: once the client has seen
				// the close it has read both.
				pc.c.Close()
			}
			b, m, reg, logs := loggedBackend(t, fp.addr())
			start := time.Now()
			for range reqs {
				if _, _, err := get(context.Background(), b, "/", nil); err != nil {
					t.Fatal(err)
				}
			}
			gatewaytest.WaitFor(t, 5*time.Second, "connection closed", func() bool {
				return gathered(t, reg, "sluice_upstream_connection_requests").GetHistogram().GetSampleCount() > 0
			})
			recs := logs.with(t, "upstream server sent GOAWAY")
			if len(recs) != 1 {
				t.Fatalf("%d GOAWAY log lines, want 1: %v", len(recs), recs)
			}
			r := recs[0]
			want := map[string]any{
				"level": tt.level, "backend": "b", "server": fp.addr(), "protocol": H2C, "code": tt.codeName,
				"last_stream_id": float64(1<<31 - 1), "debug": tt.wantDebug, "requests": float64(reqs),
			}
			for k, v := range want {
				if r[k] != v {
					t.Errorf("%s = %v (%T), want %v", k, r[k], r[k], v)
				}
			}
			if id, _ := r["upstream_conn"].(float64); id == 0 {
				t.Errorf("upstream_conn = %v", r["upstream_conn"])
			}
			if age, _ := r["age"].(float64); age <= 0 || time.Duration(age) > time.Since(start) {
				t.Errorf("age = %v, want within the test's %v", r["age"], time.Since(start))
			}
			// Every code's series exists from the start; only this
			// one counted, once.
			if got := testutil.CollectAndCount(m.goaways); got != len(goAwayLabels) {
				t.Errorf("%d GOAWAY series, want one per code label value, %d", got, len(goAwayLabels))
			}
			for _, label := range goAwayLabels {
				want := 0.0
				if label == tt.label {
					want = 1
				}
				if got := testutil.ToFloat64(m.goaways.WithLabelValues("b", fp.addr(), label)); got != want {
					t.Errorf("sluice_upstream_goaway_total{code=%q} = %v, want %v", label, got, want)
				}
			}
		})
	}
}

// TestLateGoAwayKeepsRemovedSeriesGone: after a reload removed a server
// and its series were deleted, a GOAWAY its connection's reader goroutine
// still delivers (and the connection's end) must not bring any series of
// that server back.
func TestLateGoAwayKeepsRemovedSeriesGone(t *testing.T) {
	checkNoLeak(t)
	a, c := newFakeServer(t, true, 0), newFakeServer(t, true, 0)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cfg := Config{Name: "b", Protocol: H2C, Servers: []ServerConfig{{Address: a.addr()}}, Queue: QueueConfig{MaxPending: 10}}
	b := newBackendWith(t, cfg, m, quietLog())
	if _, _, err := get(context.Background(), b, "/", nil); err != nil {
		t.Fatal(err)
	}
	old := b.Servers()[0]
	p := old.cur.Load()
	p.mu.Lock()
	conn := p.conns[0]
	p.mu.Unlock()
	cfg.Servers = []ServerConfig{{Address: c.addr()}}
	if err := b.Update(cfg); err != nil {
		t.Fatal(err)
	}
	waitRetired(t, b)
	if n := serverSeries(t, reg, a.addr()); n != 0 {
		t.Fatalf("%d series of the removed server after its shutdown", n)
	}
	for _, code := range []http2.ErrCode{http2.ErrCodeNo, http2.ErrCodeProtocol, 0x42} {
		conn.goneAway(client.GoAway{LastStreamID: 1, ErrCode: code})
	}
	conn.markGone()
	conn.pool.cfg.obs.connClosed(H2C, 1, time.Second)
	old.obs.keepAliveClosed()
	if n := serverSeries(t, reg, a.addr()); n != 0 {
		t.Errorf("%d series of the removed server re-created by late events", n)
	}
}
