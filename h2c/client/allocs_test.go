package client

import (
	"io"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
)

// TestRoundTripAllocs pins the allocations per round trip against the
// canned server: 4, the canned server's HEADERS frame (x/net's Framer
// reuses only DATA frames) included; the client's are the stream and the
// response header map (2). It was 13 before the response and the backing
// array of its header values moved into the stream's allocation and wake
// channels were recycled, 10 before the client had its own HPACK decoder
// (x/net's allocates a string per literal value) and read HEADERS frames
// without x/net allocating one, and 5 before the write coalescer started
// its flusher without a closure.
func TestRoundTripAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if testing.Short() {
		t.Skip("allocation count")
	}
	c := dialTest(t, newCannedServer(t), Config{})
	req, _ := http.NewRequest("GET", "http://"+c.nc.RemoteAddr().String()+"/allocs", nil)
	req.Header.Set("User-Agent", "allocs")
	one := func() {
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("Cache-Control %q", resp.Header.Get("Cache-Control"))
		}
	}
	one()
	const want = 4
	got := testing.AllocsPerRun(200, one)
	t.Logf("%.1f allocations per round trip", got)
	if got > want {
		t.Errorf("%.1f allocations per round trip, want at most %d", got, want)
	}
}

// TestSlots: Slots reports what InFlight, Available and Err report.
func TestSlots(t *testing.T) {
	c, _ := start(t, Config{}, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 3})
	if err := c.Reserve(); err != nil {
		t.Fatal(err)
	}
	if n, avail, err := c.Slots(); n != 1 || avail != 2 || err != nil {
		t.Errorf("Slots = %d, %d, %v; want 1, 2, nil", n, avail, err)
	}
	c.Close()
	n, avail, err := c.Slots()
	if n != c.InFlight() || avail != 0 || err == nil || err != c.Err() {
		t.Errorf("Slots after Close = %d, %d, %v; want %d, 0, %v", n, avail, err, c.InFlight(), c.Err())
	}
}
