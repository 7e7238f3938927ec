package client

import (
	"net/url"
	"testing"
)

// requestPathCases are URLs whose :path must read as URL.RequestURI does.
var requestPathCases = []string{
	"/", "/a/b", "/a/b?x=1", "/a?", "/?", "/a b", "/a%20b", "/a%2Fb", "/a/%7Euser",
	"/ü", "/a;b=c,d", "/a:b@c$&+=", "/a!b*c'(d)", "/a!b", "/a*b", "/a(b)", "/a'b", "/x?y?z", "/a?b#c", "/a#b",
	"*", "//double/slash", "/a/b?x=%zz;y", "http://h/abs?q", "http://h", "mailto:x@y",
	"/a\"b", "/a{b}|c^d`e", "/a[b]", "/%", "/%2", "/a?x=1&y=%20",
}

func TestRequestPathMatchesRequestURI(t *testing.T) {
	for _, raw := range requestPathCases {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			if u, err = url.Parse(raw); err != nil {
				continue
			}
		}
		checkRequestPath(t, u, raw)
		// A URL changed after parsing: its original target no longer reads
		// the same.
		v := *u
		v.RawQuery = "changed=1"
		checkRequestPath(t, &v, raw)
		v = *u
		v.Path += "x"
		checkRequestPath(t, &v, raw)
		checkRequestPath(t, u, "")
	}
}

func checkRequestPath(t *testing.T, u *url.URL, orig string) {
	t.Helper()
	if got, want := requestPath(u, orig), u.RequestURI(); got != want {
		t.Errorf("requestPath(%#v, %q) = %q, RequestURI %q", u, orig, got, want)
	}
}

// TestRequestPathAllocs: a clean path, with or without the query of the
// original target, costs no allocation.
func TestRequestPathAllocs(t *testing.T) {
	u, _ := url.ParseRequestURI("/index.html?q=1")
	plain, _ := url.ParseRequestURI("/index.html")
	if n := testing.AllocsPerRun(100, func() {
		requestPath(u, "/index.html?q=1")
		requestPath(plain, "/index.html")
	}); n != 0 {
		t.Errorf("%.0f allocations", n)
	}
}

// FuzzRequestPath: for any target the :path is URL.RequestURI's, with the
// target as the original or another string.
func FuzzRequestPath(f *testing.F) {
	for _, s := range requestPathCases {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, raw, other string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return
		}
		checkRequestPath(t, u, raw)
		checkRequestPath(t, u, other)
		v := *u
		v.RawPath = ""
		checkRequestPath(t, &v, raw)
		if q, err := url.Parse(other); err == nil {
			checkRequestPath(t, q, raw)
			checkRequestPath(t, q, other)
		}
	})
}
