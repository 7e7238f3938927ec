package e2e

import (
	"bufio"
	"net"
	"net/http"
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
