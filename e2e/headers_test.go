package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Hop-by-hop headers (RFC 9110 7.6.1) stop at sluice; X-Forwarded-* are added.
func TestHopByHopAndForwardedHeaders(t *testing.T) {
	for _, u := range upstreamsForBodies {
		t.Run(u.name, func(t *testing.T) {
			s := startSluice(t, u.cfg().yaml())
			got := rawHeadersRequest(t, s.Listen)

			for _, h := range []string{"connection", "x-foo", "keep-alive", "proxy-authorization", "proxy-connection", "upgrade", "transfer-encoding"} {
				if v, ok := got[h]; ok {
					t.Errorf("hop-by-hop header reached Tomcat: %s: %q", h, v)
				}
			}
			// TE is hop-by-hop; the one value HTTP/2 allows to be forwarded is "trailers".
			if v, ok := got["te"]; ok && strings.Join(v, ",") != "trailers" {
				t.Errorf("te: %q reached Tomcat, want it absent or exactly \"trailers\"", v)
			}
			want := map[string]string{
				"x-end-to-end":      "kept",
				"x-forwarded-for":   "127.0.0.1",
				"x-forwarded-proto": "http",
				"x-forwarded-host":  "e2e.example",
			}
			for h, w := range want {
				if v := strings.Join(got[h], ","); v != w {
					t.Errorf("%s = %q at Tomcat, want %q", h, v, w)
				}
			}
			if t.Failed() {
				t.Logf("headers Tomcat received: %v", got)
			}
		})
	}
}

// rawHeadersRequest writes the request by hand so exactly these header lines
// are sent (Go's client would treat some of them specially), and parses the
// "name: value" lines /headers returns.
func rawHeadersRequest(t *testing.T, listen string) map[string][]string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET /headers HTTP/1.1\r\n" +
		"Host: e2e.example\r\n" +
		"Connection: X-Foo\r\n" +
		"X-Foo: 1\r\n" +
		"Keep-Alive: 5\r\n" +
		"Proxy-Authorization: x\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"TE: trailers, deflate\r\n" +
		"Upgrade: foo\r\n" +
		"X-End-To-End: kept\r\n" +
		"\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /headers: status %d", resp.StatusCode)
	}
	got := map[string][]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ": ")
		if ok {
			got[name] = append(got[name], value)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading /headers body: %v", err)
	}
	return got
}

// TestHeaderFieldOrder: Tomcat gets the header fields in the order an
// HTTP/1.1 client sent them, as through HAProxy or nginx, the gateway's
// X-Forwarded-* after them, on both upstream protocols; an HTTP/2
// client's (a map in Go's server) in sorted name order. Each request is
// sent a few times: a map's order changes from one to the next.
func TestHeaderFieldOrder(t *testing.T) {
	sent := []string{"zeta", "user-agent", "accept", "x-b", "mid", "x-a"}
	h1Want := strings.Join(append(sent, "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"), ",")
	h2Want := "accept,mid,user-agent,x-a,x-b,zeta,x-forwarded-for,x-forwarded-host,x-forwarded-proto"
	known := func(name string) bool { return slices.Contains(sent, name) || strings.HasPrefix(name, "x-forwarded-") }
	for _, u := range upstreamsForBodies {
		t.Run(u.name, func(t *testing.T) {
			s := startSluice(t, u.cfg().yaml())
			conn, err := net.DialTimeout("tcp", s.Listen, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(conn)
			var req strings.Builder
			req.WriteString("GET /headers HTTP/1.1\r\nHost: e2e.example\r\n")
			for _, k := range sent {
				req.WriteString(k + ": v\r\n")
			}
			req.WriteString("\r\n")
			h2 := h2cClient()
			for i := range 5 {
				if _, err := io.WriteString(conn, req.String()); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := headerNames(t, resp, known); got != h1Want {
					t.Fatalf("HTTP/1.1 client, request %d: Tomcat got %s, want %s", i, got, h1Want)
				}
				r, _ := http.NewRequest("GET", s.URL+"/headers", nil)
				for _, k := range sent {
					r.Header.Set(k, "v")
				}
				resp, err = h2.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				if got := headerNames(t, resp, known); resp.ProtoMajor != 2 || got != h2Want {
					t.Fatalf("%s client, request %d: Tomcat got %s, want %s", resp.Proto, i, got, h2Want)
				}
			}
		})
	}
}

// headerNames reads resp, an answer from /headers, and returns the names
// of the fields Tomcat received for which keep is true, in its order,
// joined by ",".
func headerNames(t *testing.T, resp *http.Response, keep func(string) bool) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /headers: %d %v", resp.StatusCode, err)
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		if name, _, ok := strings.Cut(line, ": "); ok && keep(name) {
			names = append(names, name)
		}
	}
	return strings.Join(names, ",")
}
