package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-gw/sluice/upstream"
)

func TestNewErrorPageContentType(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"/etc/sluice/503.html", "x", "text/html; charset=utf-8"},
		{"503.HTM", "x", "text/html; charset=utf-8"},
		{"busy.json", `{"error":"busy"}`, "application/json"},
		{"busy.txt", "<html>not html</html>", "text/plain; charset=utf-8"},
		{"503", "<!DOCTYPE html><html><body>busy</body></html>", "text/html; charset=utf-8"},
		{"503.page", "plain words", "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewErrorPage(tt.name, []byte(tt.body))
			if p.ContentType != tt.want || string(p.Body) != tt.body {
				t.Errorf("NewErrorPage(%q) = %q %q, want content type %q", tt.name, p.ContentType, p.Body, tt.want)
			}
		})
	}
}

// rtFunc is a RoundTripper standing in for a backend.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func failWith(err error) http.RoundTripper {
	return rtFunc(func(*http.Request) (*http.Response, error) { return nil, err })
}

// answer is a backend that itself answers code with body.
func answer(code int, body string) http.RoundTripper {
	return rtFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{
			StatusCode: code, Proto: "HTTP/2.0", ProtoMajor: 2,
			Header:  http.Header{"Content-Type": {"text/plain"}},
			Body:    io.NopCloser(strings.NewReader(body)),
			Request: r, ContentLength: int64(len(body)),
		}, nil
	})
}

func TestErrorPages(t *testing.T) {
	html := NewErrorPage("503.html", []byte("<h1>We are busy</h1>\n"))
	all := map[int]ErrorPage{
		404: NewErrorPage("404.txt", []byte("no such page\n")),
		502: NewErrorPage("502.html", []byte("<h1>Bad gateway</h1>\n")),
		503: html,
		504: {Body: []byte("<html><body>slow</body></html>")}, // sniffed
	}
	only503 := map[int]ErrorPage{503: html}
	noHealthy := fmt.Errorf("%w in backend %q", upstream.ErrNoHealthyServer, "b")
	tests := []struct {
		name       string
		rt         http.RoundTripper // nil: the request matches no route
		pages      map[int]ErrorPage
		code       int
		ctype      string
		body       string
		retryAfter bool
	}{
		{"no route, text", nil, nil, 404, "text/plain; charset=utf-8", "no route for this host and path\n", false},
		{"no route, page", nil, all, 404, "text/plain; charset=utf-8", "no such page\n", false},
		{"queue full, text", failWith(upstream.ErrQueueFull), nil, 503, "text/plain; charset=utf-8", "queue full (backend \"b\")\n", true},
		{"queue full, page", failWith(upstream.ErrQueueFull), all, 503, "text/html; charset=utf-8", "<h1>We are busy</h1>\n", true},
		{"queue timeout, page", failWith(fmt.Errorf("wait: %w", upstream.ErrQueueTimeout)), only503, 503, "text/html; charset=utf-8", "<h1>We are busy</h1>\n", true},
		{"no healthy server, text", failWith(noHealthy), nil, 503, "text/plain; charset=utf-8", "no healthy server in backend \"b\"\n", true},
		{"no healthy server, page", failWith(noHealthy), all, 503, "text/html; charset=utf-8", "<h1>We are busy</h1>\n", true},
		{"unreachable, page", failWith(&upstream.DialError{Addr: "a:1", Err: syscall.ECONNREFUSED}), all, 502, "text/html; charset=utf-8", "<h1>Bad gateway</h1>\n", false},
		{"unreachable, page for another code", failWith(&upstream.DialError{Addr: "a:1", Err: syscall.ECONNREFUSED}), only503, 502, "text/plain; charset=utf-8", "upstream unreachable (backend \"b\")\n", false},
		{"timeout, sniffed page", failWith(context.DeadlineExceeded), all, 504, "text/html; charset=utf-8", "<html><body>slow</body></html>", false},
		{"timeout, text", failWith(context.DeadlineExceeded), only503, 504, "text/plain; charset=utf-8", "upstream timeout (backend \"b\")\n", false},
		{"bad gateway, text", failWith(errors.New("boom")), nil, 502, "text/plain; charset=utf-8", "bad gateway (backend \"b\")\n", false},
		// Tomcat's own errors are the application's answer: never replaced.
		{"backend's own 503", answer(503, "tomcat says busy"), all, 503, "text/plain", "tomcat says busy", false},
		{"backend's own 404", answer(404, "tomcat 404"), all, 404, "text/plain", "tomcat 404", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := "app.example"
			rt := tt.rt
			if rt == nil {
				host, rt = "other.example", answer(200, "unreachable")
			}
			g, err := New(Config{
				Routes:     []Route{{Host: "app.example", PathPrefix: "/", Backend: "b"}},
				ErrorPages: tt.pages,
			}, map[string]http.RoundTripper{"b": rt}, NewMetrics(nil), quiet())
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("GET", "http://"+host+"/x", nil)
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.code || string(body) != tt.body {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, body, tt.code, tt.body)
			}
			if ct := res.Header.Get("Content-Type"); ct != tt.ctype {
				t.Errorf("Content-Type %q, want %q", ct, tt.ctype)
			}
			if ra := res.Header.Get("Retry-After"); (ra == "1") != tt.retryAfter || (ra != "" && ra != "1") {
				t.Errorf("Retry-After %q, want it set to 1: %v", ra, tt.retryAfter)
			}
			if tt.pages[tt.code].Body != nil && string(body) == string(tt.pages[tt.code].Body) {
				if cl := res.Header.Get("Content-Length"); cl != fmt.Sprint(len(body)) {
					t.Errorf("Content-Length %q for a %d-byte page", cl, len(body))
				}
			}
		})
	}
}

// A custom page must also reach a real client over the wire, HEAD included.
func TestErrorPageOverHTTP(t *testing.T) {
	page := NewErrorPage("503.html", []byte("<p>busy</p>"))
	g, err := New(Config{
		Routes:     []Route{{Host: "*", PathPrefix: "/", Backend: "b"}},
		ErrorPages: map[int]ErrorPage{503: page},
	}, map[string]http.RoundTripper{"b": failWith(upstream.ErrQueueFull)}, NewMetrics(nil), quiet())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	for _, method := range []string{"GET", "HEAD"} {
		req, _ := http.NewRequest(method, srv.URL+"/", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "<p>busy</p>"
		if method == "HEAD" {
			want = ""
		}
		if resp.StatusCode != 503 || string(body) != want || resp.Header.Get("Retry-After") != "1" ||
			resp.ContentLength != int64(len(page.Body)) || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("%s: %d %q, Retry-After %q, length %d, type %q", method, resp.StatusCode, body,
				resp.Header.Get("Retry-After"), resp.ContentLength, resp.Header.Get("Content-Type"))
		}
	}
}
