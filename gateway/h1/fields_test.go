package h1

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestWriteHeaderFieldsMatchesMap: a header given as a list to
// WriteHeaderFields makes the head the same fields added to Header()
// and WriteHeader make (order aside): framing fields replaced or
// dropped, Connection set, Date and Content-Type added when missing,
// line breaks in values turned to spaces, trailers.
func TestWriteHeaderFieldsMatchesMap(t *testing.T) {
	type tc struct {
		code   int
		fields [][2]string
		body   string
	}
	cases := map[string]tc{
		"badcl":   {200, [][2]string{{"Content-Length", "x"}, {"X-A", "1"}}, "hi"},
		"te":      {200, [][2]string{{"Transfer-Encoding", "chunked"}, {"Content-Length", "2"}}, "hi"},
		"conn":    {200, [][2]string{{"Connection", "keep-alive"}, {"X-A", "a"}, {"X-A", "b"}}, "hi"},
		"sniff":   {200, [][2]string{{"X-A", "1"}}, "<html></html>"},
		"typed":   {200, [][2]string{{"Content-Type", "text/plain"}, {"Date", "Mon, 01 Jan 2024 00:00:00 GMT"}}, "hi"},
		"nocont":  {204, [][2]string{{"Content-Length", "5"}}, ""},
		"notmod":  {304, [][2]string{{"Content-Length", "5"}, {"Etag", `"e"`}}, ""},
		"crlf":    {200, [][2]string{{"X-A", "a\r\nb"}, {"X-B", "  c  "}}, "hi"},
		"trailer": {200, [][2]string{{"Trailer", "X-T"}, {"Content-Length", "2"}}, "hi"},
		"cl":      {200, [][2]string{{"Content-Length", "10"}}, "0123456789"},
	}
	s := &Server{}
	addr := startServer(t, s, func(w http.ResponseWriter, r *http.Request) {
		c := cases[r.URL.Path[1:]]
		if r.URL.Query().Get("list") != "" {
			w.(FieldsWriter).WriteHeaderFields(c.code, c.fields)
		} else {
			for _, f := range c.fields {
				w.Header()[f[0]] = append(w.Header()[f[0]], f[1])
			}
			w.WriteHeader(c.code)
		}
		io.WriteString(w, c.body)
		if r.URL.Path == "/trailer" {
			w.Header().Set("X-T", "t")
		}
	})
	for name := range cases {
		for _, req := range []string{
			"GET /%s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
			"GET /%s HTTP/1.0\r\nHost: h\r\n\r\n",
			"HEAD /%s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		} {
			var got [2]string
			for i, q := range []string{"", "?list=1"} {
				c, _ := dial(t, addr)
				io.WriteString(c, strings.Replace(req, "%s", name+q, 1))
				raw, err := io.ReadAll(c)
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				head, body, _ := strings.Cut(string(raw), "\r\n\r\n")
				lines := strings.Split(head, "\r\n")
				for j, l := range lines {
					if strings.HasPrefix(l, "Date: ") && !strings.Contains(l, "2024") {
						lines[j] = "Date: -"
					}
				}
				slices.Sort(lines[1:])
				got[i] = strings.Join(lines, "\r\n") + "\r\n\r\n" + body
			}
			if got[0] != got[1] {
				t.Errorf("%s %q:\nmap:\n%s\nlist:\n%s", name, strings.SplitN(req, "\r\n", 2)[0], got[0], got[1])
			}
		}
	}
}
