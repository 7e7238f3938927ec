package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests talk to Tomcat directly, without sluice: they pin down what the
// deploy/tomcat configuration and test webapp guarantee, so a gateway test
// failure can be told apart from a fixture problem. They need no sluice binary.

func TestTomcatFixture(t *testing.T) {
	for _, c := range []struct {
		name string
		port int
		h2c  bool
	}{{"A_h2c", tc.A, true}, {"B_h2c", tc.B, true}, {"H1_only", tc.H1, false}} {
		t.Run(c.name, func(t *testing.T) {
			base := "http://" + addr(c.port)
			h1 := h1Client()
			for _, p := range []string{"/", "/hello"} {
				r := get(t, h1, base+p)
				if r.status != 200 || r.body != helloBody || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
					t.Fatalf("HTTP/1.1 GET %s = %d %q (%s), want 200 %q text/plain", p, r.status, r.body, r.header.Get("Content-Type"), helloBody)
				}
			}
			if r := get(t, h1, base+"/proto"); strings.TrimSpace(r.body) != "HTTP/1.1" {
				t.Fatalf("HTTP/1.1 GET /proto = %q", r.body)
			}
			if r := get(t, h1, base+"/nope"); r.status != 404 {
				t.Fatalf("GET /nope = %d, want 404", r.status)
			}

			h2 := h2cClient()
			if !c.h2c {
				resp, err := h2.Get(base + "/")
				if err == nil {
					resp.Body.Close()
					t.Fatalf("h2c prior knowledge on the HTTP/1.1-only connector succeeded (%s); the fallback tests need it refused", resp.Proto)
				}
				return
			}
			r := get(t, h2, base+"/proto")
			if r.proto != "HTTP/2.0" || strings.TrimSpace(r.body) != "HTTP/2.0" {
				t.Fatalf("h2c GET /proto: response %s, body %q; want HTTP/2.0 both", r.proto, r.body)
			}
			if r := get(t, h2, base+"/"); r.status != 200 || r.body != helloBody {
				t.Fatalf("h2c GET / = %d %q", r.status, r.body)
			}
		})
	}

	t.Run("echo", func(t *testing.T) {
		body := make([]byte, 3<<20)
		rand.Read(body)
		want := sha256.Sum256(body)
		for _, c := range []struct {
			name   string
			client *http.Client
			port   int
			method string
		}{{"h2c_PUT", h2cClient(), tc.A, http.MethodPut}, {"h1_POST", h1Client(), tc.H1, http.MethodPost}, {"h1_PATCH", h1Client(), tc.H1, http.MethodPatch}} {
			req, _ := http.NewRequest(c.method, "http://"+addr(c.port)+"/echo", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-e2e")
			resp, err := c.client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || sha256.Sum256(got) != want || resp.Header.Get("Content-Type") != "application/x-e2e" {
				t.Fatalf("%s: status %d, %d bytes (want %d), Content-Type %q, err %v", c.name, resp.StatusCode, len(got), len(body), resp.Header.Get("Content-Type"), err)
			}
		}
	})

	t.Run("headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr(tc.H1)+"/headers", nil)
		req.Header.Set("X-Probe", "42")
		resp, err := h1Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "\nx-probe: 42\n") || !strings.HasPrefix(string(b), "host: ") {
			t.Fatalf("/headers body:\n%s", b)
		}
	})

	t.Run("slow", func(t *testing.T) {
		start := time.Now()
		r := get(t, h2cClient(), "http://"+addr(tc.B)+"/slow?ms=200")
		if took := time.Since(start); r.body != "slow\n" || took < 200*time.Millisecond {
			t.Fatalf("/slow?ms=200 = %q after %v", r.body, took)
		}
	})

	t.Run("big", func(t *testing.T) {
		const n = 3_000_001
		r := get(t, h1Client(), "http://"+addr(tc.H1)+"/big?bytes="+strconv.Itoa(n))
		if len(r.body) != n || r.header.Get("Content-Length") != strconv.Itoa(n) || strings.Trim(r.body, "x") != "" {
			t.Fatalf("/big: %d bytes, Content-Length %q", len(r.body), r.header.Get("Content-Length"))
		}
	})
}

// TestTomcatToleratesResetBursts checks the overhead settings in
// deploy/tomcat/server.xml: with Tomcat's defaults, a burst of client aborts
// (HEADERS then RST_STREAM, as the gateway sends when clients disconnect) or
// of PING/SETTINGS frames makes Tomcat send GOAWAY ENHANCE_YOUR_CALM, which
// would kill every other request multiplexed on the gateway's connection.
func TestTomcatToleratesResetBursts(t *testing.T) {
	t.Run("aborted_requests", func(t *testing.T) {
		if err := resetBurst(addr(tc.A), 500, "/slow?ms=10"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("resets_first_thing", func(t *testing.T) {
		// The worst case: a fresh connection whose first requests are all aborted.
		if err := resetBurst(addr(tc.B), 50, "/"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("control_frames", func(t *testing.T) {
		h, err := dialRawH2(addr(tc.A))
		if err != nil {
			t.Fatal(err)
		}
		defer h.close()
		for i := range 300 {
			h.frame(framePing, 0, 0, []byte{0, 0, 0, 0, 0, 0, 0, byte(i)})
			if i%10 == 0 {
				h.frame(frameSettings, 0, 0, nil)
			}
		}
		h.get(1, addr(tc.A), "/")
		if err := h.w.Flush(); err != nil {
			t.Fatal(err)
		}
		if ok, err := h.awaitResponse(1, 20*time.Second); err != nil || !ok {
			t.Fatalf("request after 300 PINGs + 30 SETTINGS: headers=%v err=%v", ok, err)
		}
	})
}

// resetBurst opens one h2c connection, sends n requests each immediately
// followed by RST_STREAM(CANCEL) plus a PING every 10, then one normal request,
// and fails if that request does not complete or Tomcat sends GOAWAY.
func resetBurst(address string, n int, path string) error {
	h, err := dialRawH2(address)
	if err != nil {
		return err
	}
	defer h.close()
	id := uint32(1)
	for i := range n {
		h.get(id, address, path)
		h.rst(id, errCodeCancel)
		id += 2
		if i%10 == 9 {
			h.frame(framePing, 0, 0, []byte("e2e-ping"))
		}
	}
	h.get(id, address, "/")
	werr := h.w.Flush()
	ok, err := h.awaitResponse(id, 30*time.Second)
	if err != nil {
		return fmt.Errorf("after %d aborted requests: %v (write error: %v)", n, err, werr)
	}
	if !ok {
		return fmt.Errorf("after %d aborted requests: final request ended without HEADERS", n)
	}
	return nil
}
