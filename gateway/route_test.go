package gateway

import "testing"

func TestRouterMatch(t *testing.T) {
	a, b, c := &proxy{name: "a"}, &proxy{name: "b"}, &proxy{name: "c"}
	var rt router
	rt.add(Route{Host: "api.example.com", PathPrefix: "/v1/", Backend: "a"}, a)
	rt.add(Route{Host: "*.example.com", PathPrefix: "/", Backend: "b"}, b)
	rt.add(Route{Host: "*", PathPrefix: "/static", Backend: "c"}, c)
	tests := []struct {
		host, path string
		want       *proxy
	}{
		{"api.example.com", "/v1/users", a},
		{"API.Example.com:8080", "/v1/users", a},
		{"api.example.com", "/v2/users", b},
		{"www.example.com", "/", b},
		{"example.com", "/", nil},
		{"example.com", "/static/x.css", c},
		{"other.org", "/staticfiles", c},
		{"other.org", "/", nil},
		{"[::1]:8080", "/static", c},
		{"", "/static", c},
	}
	for _, tt := range tests {
		if got := rt.match(tt.host, tt.path); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.host, tt.path, name(got), name(tt.want))
		}
	}
}

func name(p *proxy) string {
	if p == nil {
		return "<nil>"
	}
	return p.name
}

func TestStripPort(t *testing.T) {
	tests := map[string]string{
		"example.com":     "example.com",
		"example.com:80":  "example.com",
		"127.0.0.1:8080":  "127.0.0.1",
		"[::1]:8080":      "::1",
		"[::1]":           "::1",
		"":                "",
		"host:notaport:1": "host:notaport:1",
	}
	for in, want := range tests {
		if got := stripPort(in); got != want {
			t.Errorf("stripPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzRouterMatch(f *testing.F) {
	var rt router
	p := &proxy{name: "x"}
	rt.add(Route{Host: "*.example.com", PathPrefix: "/a"}, p)
	rt.add(Route{Host: "exact.org", PathPrefix: "/"}, p)
	for _, s := range []string{"a.example.com", "[::1]:80", "exact.org:1", ":", "[", "]:"} {
		f.Add(s, "/a")
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		got := rt.match(host, path)
		if got != nil && got != p {
			t.Fatal("unknown proxy")
		}
	})
}
