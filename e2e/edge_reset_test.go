package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/sluice-gw/sluice/gateway/gatewaytest"
)

// floodResult is how a rapid-reset flood went.
type floodResult struct {
	streams  int           // HEADERS+RST_STREAM pairs written
	goaway   string        // the server's GOAWAY, if any ("ENHANCE_YOUR_CALM last-stream 123 \"debug\"")
	end      string        // how the connection ended: "EOF", a read error, or "still open"
	closedAt time.Duration // since the flood began, when the server ended it
}

func (f floodResult) String() string {
	s := fmt.Sprintf("%d HEADERS+RST_STREAM pairs written; connection end: %s", f.streams, f.end)
	if f.closedAt > 0 {
		s += fmt.Sprintf(" after %v", f.closedAt.Round(time.Millisecond))
	}
	if f.goaway != "" {
		s += "; GOAWAY " + f.goaway
	}
	return s
}

// rapidReset opens one h2c connection to addr and, for up to d, sends
// HEADERS (a complete GET) immediately followed by RST_STREAM(CANCEL) on
// stream after stream (CVE-2023-44487), as fast as the socket takes them.
func rapidReset(addr string, d time.Duration) (floodResult, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return floodResult{}, err
	}
	defer c.Close()
	bw := bufio.NewWriterSize(c, 64<<10)
	var wmu sync.Mutex // the framer's writes: the flood and the reader's ACKs
	fr := http2.NewFramer(bw, c)
	bw.WriteString(http2.ClientPreface)
	fr.WriteSettings()
	bw.Flush()

	start := time.Now()
	var res floodResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				res.closedAt = time.Since(start)
				res.end = err.Error()
				if errors.Is(err, io.EOF) {
					res.end = "EOF (server closed the connection)"
				}
				return
			}
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				res.goaway = fmt.Sprintf("%v last-stream %d %q", f.ErrCode, f.LastStreamID, f.DebugData())
			case *http2.SettingsFrame:
				if !f.IsAck() {
					wmu.Lock()
					fr.WriteSettingsAck()
					bw.Flush()
					wmu.Unlock()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					wmu.Lock()
					fr.WritePing(true, f.Data)
					bw.Flush()
					wmu.Unlock()
				}
			}
		}
	}()

	block := hpackGET("127.0.0.1", "/")
	deadline := start.Add(d)
	for id := uint32(1); time.Now().Before(deadline); id += 2 {
		select {
		case <-done:
			return res, nil
		default:
		}
		wmu.Lock()
		err1 := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
		err2 := fr.WriteRSTStream(id, http2.ErrCodeCancel)
		var err3 error
		if id%64 == 1 {
			err3 = bw.Flush()
		}
		wmu.Unlock()
		if err := errors.Join(err1, err2, err3); err != nil {
			break // the server closed it; the reader says how
		}
		res.streams++
	}
	wmu.Lock()
	bw.Flush()
	wmu.Unlock()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		c.Close()
		<-done
		res.end, res.closedAt = "still open", 0
	}
	return res, nil
}

// h2cOwnConn is an h2c client with a connection of its own.
func h2cOwnConn() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Proxy: nil, Protocols: &p, DisableCompression: true}}
}

// One connection flooding HEADERS+RST_STREAM must not slow down 100 normal
// h2c clients, and Go's server should end that connection.
func TestRapidResetFloodIsContained(t *testing.T) {
	s := startSluice(t, h2cFunnelConfig())
	url := s.URL + "/"
	runLatencyLoad(100, 5*time.Second, url, h2cOwnConn) // warm-up: JIT, connections
	reqs := func() float64 { return metric(t, s.Admin, "sluice_requests_total", nil) }
	gone := func() float64 { return metric(t, s.Admin, "sluice_requests_total", map[string]string{"code": "499"}) }
	rejected := func() float64 {
		return metric(t, s.Admin, "sluice_client_rejected_total", map[string]string{"reason": "rapid_reset"})
	}
	rejected0 := rejected()

	var floodConns, floodStreams int
	var last floodResult
	// When each flooding connection was cut, since its flood began. The
	// guard cuts one as soon as it has read the limit's worth of resets,
	// within milliseconds; Go's server alone would only after 1-3 s
	// (reset.go). One connection's time is at the mercy of the scheduler
	// on a loaded box, the median is not.
	var cutAfter []time.Duration
	round := 0
	requireAttackContained(t, "rapid-reset flood",
		func() *latencies { return runLatencyLoad(100, 3*time.Second, url, h2cOwnConn) },
		func() *latencies {
			round++
			before, gone0, rejectedRound := reqs(), gone(), rejected()
			var flood floodResult
			var floodErr error
			conns, streams := 0, 0
			floodDone := make(chan struct{})
			go func() {
				defer close(floodDone)
				// A flooder whose connection is cut connects again, for the
				// whole 6 s, at most 10 times a second: the per-address
				// connection rate limit of the L4 load balancer or firewall
				// in front (README, "HTTP/2 attacks"). Without one, every
				// reconnection costs an accept and a handshake on top, and
				// on this 2-core box the flooder's own CPU competes with the
				// normal clients.
				// Each connection floods until it is cut, for up to
				// floodFor, even past the 6 s: one begun just before them
				// must still reach the guard's limit, or its staying open
				// would say nothing about the guard.
				const floodFor = 3 * time.Second
				deadline := time.Now().Add(6 * time.Second)
				for time.Now().Before(deadline) {
					flood, floodErr = rapidReset(s.Listen, floodFor)
					if floodErr != nil || flood.end == "still open" {
						return
					}
					conns++
					streams += flood.streams
					cutAfter = append(cutAfter, flood.closedAt)
					time.Sleep(100 * time.Millisecond) // pacing: the reconnection rate limit above
				}
			}()
			// The flood under way: its first connection cut.
			gatewaytest.WaitFor(t, 6*time.Second, "the first flooding connection cut", func() bool { return rejected() > rejectedRound })
			under := runLatencyLoad(100, 5*time.Second, url, h2cOwnConn)
			<-floodDone
			if floodErr != nil {
				t.Fatal(floodErr)
			}
			if flood.end == "still open" {
				t.Fatalf("the flooding connection was not closed by the server: %v", flood)
			}
			handled := reqs() - before - float64(len(under.d)+under.failed)
			t.Logf("rapid reset, round %d: %d connections cut, %d HEADERS+RST_STREAM pairs written in all; last connection: %v; requests sluice handled from the flood: %.0f (%.0f counted as 499, client gone)",
				round, conns, streams, flood, handled, gone()-gone0)
			floodConns += conns
			floodStreams += streams
			last = flood
			return under
		})
	got := rejected() - rejected0
	t.Logf("rapid reset, %d rounds: %d connections cut, %d HEADERS+RST_STREAM pairs; last connection: %v; sluice_client_rejected_total{reason=rapid_reset} grew by %v",
		round, floodConns, floodStreams, last, got)
	if len(cutAfter) == 0 {
		t.Fatal("no flooding connection was cut")
	}
	slices.Sort(cutAfter)
	med := medianDuration(cutAfter)
	t.Logf("flooding connections cut after min %v, median %v, max %v", cutAfter[0].Round(time.Millisecond),
		med.Round(time.Millisecond), cutAfter[len(cutAfter)-1].Round(time.Millisecond))
	if med > 500*time.Millisecond {
		t.Errorf("flooding connections were cut after a median %v, want well under a second", med)
	}
	if got < float64(floodConns) {
		t.Errorf("sluice_client_rejected_total{reason=rapid_reset} grew by %v for %d flooding connections cut", got, floodConns)
	}
}
