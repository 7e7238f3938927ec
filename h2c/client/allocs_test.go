package client

import (
	"io"
	"net/http"
	"testing"
)

// TestRoundTripAllocs pins the allocations per round trip against the
// canned server: 11, the canned server's HEADERS frame (x/net's Framer
// reuses only DATA frames) included. Among the client's: the stream and
// its wake channel, the response header map, the client's HEADERS frame
// and the decoder's strings for the canned literal values. It was 13
// before the response and the backing array of its header values moved
// into the stream's allocation.
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
	const want = 11
	if got := testing.AllocsPerRun(200, one); got > want {
		t.Errorf("%.1f allocations per round trip, want at most %d", got, want)
	}
}
