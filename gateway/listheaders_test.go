package gateway

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/upstream"
)

// TestResponseFieldsMatchMapPath: an h2c server's response reaches an
// HTTP/1.1 client the same whether its header goes into the head as the
// list the h2c client decoded (copyFields, h1.FieldsWriter) or through
// header maps: same status line, fields (order aside), framing and body,
// across HEAD, 1xx, status-only answers, trailers, streaming, HTTP/1.0.
func TestResponseFieldsMatchMapPath(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Multi"] = []string{"a", " b ", "c"}
		h.Add("Set-Cookie", "k=1")
		h.Add("Set-Cookie", "j=2")
		h.Set("Server", "origin")
		h.Set("Cache-Control", "no-cache")
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "<html>hello</html>")
		case "/typed":
			h.Set("Content-Type", "text/plain")
			h.Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/nocontent", "/notmodified":
			// Status-only answers, one of them with a validator.
			code := http.StatusNoContent
			if r.URL.Path == "/notmodified" {
				h["Etag"], code = []string{`"x"`}, http.StatusNotModified
			}
			w.WriteHeader(code)
		case "/early":
			h.Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			h.Del("Link")
			io.WriteString(w, "after hints")
		case "/trailers":
			h.Set("Content-Length", "5")
			io.WriteString(w, "hello")
			h.Set(http.TrailerPrefix+"X-Sum", "abc")
		case "/announced":
			h.Set("Trailer", "X-Sum")
			io.WriteString(w, "hello")
			h.Set("X-Sum", "abc")
		case "/stream":
			h.Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			io.WriteString(w, "data: 2\n\n")
		case "/big":
			io.WriteString(w, strings.Repeat("x", 100<<10))
		case "/encoded":
			h.Set("Content-Encoding", "gzip")
			io.WriteString(w, "\x1f\x8b not really")
		}
	})
	gw := newGatewayProto(t, up, upstream.H2C, upstream.QueueConfig{MaxPending: 10})
	reqs := []string{
		"GET /small HTTP/1.1\r\nHost: x\r\n",
		"GET /small HTTP/1.0\r\nHost: x\r\n",
		"HEAD /small HTTP/1.1\r\nHost: x\r\n",
		"HEAD /typed HTTP/1.1\r\nHost: x\r\n",
		"GET /typed HTTP/1.1\r\nHost: x\r\n",
		"GET /nocontent HTTP/1.1\r\nHost: x\r\n",
		"GET /notmodified HTTP/1.1\r\nHost: x\r\n",
		"GET /early HTTP/1.1\r\nHost: x\r\n",
		"GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n",
		"GET /trailers HTTP/1.1\r\nHost: x\r\n",
		"GET /trailers HTTP/1.0\r\nHost: x\r\nTE: trailers\r\n",
		"GET /announced HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n",
		"GET /announced HTTP/1.1\r\nHost: x\r\n",
		"GET /encoded HTTP/1.1\r\nHost: x\r\n",
		"GET /missing HTTP/1.1\r\nHost: x\r\n",
	}
	defer listResponses.Store(true)
	for _, req := range reqs {
		name := strings.SplitN(req, "\r\n", 2)[0]
		for _, keepAlive := range []bool{false, true} {
			listResponses.Store(true)
			list := exchangeRaw(t, gw, req, keepAlive)
			listResponses.Store(false)
			maps := exchangeRaw(t, gw, req, keepAlive)
			if list != maps {
				t.Errorf("%s (keep-alive %v):\nlist path:\n%s\nmap path:\n%s", name, keepAlive, list, maps)
			}
		}
	}
	// Streamed bodies are chunked as they come: the heads only.
	for _, req := range []string{
		"GET /stream HTTP/1.1\r\nHost: x\r\n",
		"GET /big HTTP/1.1\r\nHost: x\r\n",
	} {
		listResponses.Store(true)
		list := responseHead.FindString(exchangeRaw(t, gw, req, false))
		listResponses.Store(false)
		maps := responseHead.FindString(exchangeRaw(t, gw, req, false))
		if list != maps || list == "" {
			t.Errorf("%s:\nlist path:\n%s\nmap path:\n%s", req, list, maps)
		}
	}
}

var (
	dateLine     = regexp.MustCompile(`Date: [^\r\n]*`)
	responseHead = regexp.MustCompile(`HTTP/1\.[01] \d{3}[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n`)
)

// exchangeRaw sends req (a head without its final CRLF) and returns the
// response as it came, up to the connection's end (Connection: close) or,
// with keepAlive, up to the second request's answer, which closes it: the
// head's field lines sorted and the Date's value blanked.
func exchangeRaw(t *testing.T, addr, req string, keepAlive bool) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := req + "Connection: close\r\n\r\n"
	if keepAlive && strings.Contains(req, "HTTP/1.1") {
		msg = req + "\r\n" + msg
	}
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	s := dateLine.ReplaceAllString(string(raw), "Date: -")
	// Sort the field lines of each head by name, stably: the list keeps
	// the server's order, the map path sorts the names; the values of a
	// name keep their order on both.
	return responseHead.ReplaceAllStringFunc(s, func(head string) string {
		lines := strings.Split(head, "\r\n")
		fields := lines[1 : len(lines)-2]
		slices.SortStableFunc(fields, func(a, b string) int {
			an, _, _ := strings.Cut(a, ":")
			bn, _, _ := strings.Cut(b, ":")
			return strings.Compare(an, bn)
		})
		return strings.Join(lines, "\r\n")
	})
}
