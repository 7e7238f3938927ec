package client

import (
	"io"
	"net/http"
	"slices"
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
	c, req := allocsConn(t)
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
	checkAllocs(t, one, 4)
}

// allocsConn skips an allocation count where it cannot be made, and
// returns a connection to a canned server and a request to it.
func allocsConn(t *testing.T) (*Conn, *http.Request) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if testing.Short() {
		t.Skip("allocation count")
	}
	c := dialTest(t, newCannedServer(t), Config{})
	req, _ := http.NewRequest("GET", "http://"+c.nc.RemoteAddr().String()+"/allocs", nil)
	return c, req
}

// checkAllocs fails the test if one, warmed up, allocates more than want.
func checkAllocs(t *testing.T, one func(), want float64) {
	t.Helper()
	one()
	got := testing.AllocsPerRun(200, one)
	t.Logf("%.1f allocations per round trip", got)
	if got > want {
		t.Errorf("%.1f allocations per round trip, want at most %v", got, want)
	}
}

// TestRoundTripListAllocs: RoundTripList, which gives the response
// header as a list in the stream's own memory, allocates two fewer than
// RoundTrip (no header map and its table): 2, the canned server's
// HEADERS frame included.
func TestRoundTripListAllocs(t *testing.T) {
	c, req := allocsConn(t)
	fields := []Field{{Name: "User-Agent", Values: []string{"allocs"}}}
	var got [][2]string
	one := func() {
		resp, err := c.RoundTripList(req, fields, &got)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header != nil || !slices.Contains(got, [2]string{"Cache-Control", "no-cache"}) {
			t.Fatalf("header %v, list %q", resp.Header, got)
		}
	}
	checkAllocs(t, one, 2)
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
