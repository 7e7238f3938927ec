package gateway

import (
	"net"
	"strings"
)

// Route sends requests whose host and path match to a backend. Its tags
// are a route's schema in Sluice's config file (cmd/sluice/internal/config).
type Route struct {
	// Host is "*" (any host, also the zero value), an exact host name, or
	// "*.example.com" (any subdomain of example.com, not example.com
	// itself). Case-insensitive; the request's port is ignored.
	Host string `yaml:"host" check:"routehost"`
	// PathPrefix matches the start of the request path, byte for byte, as
	// HAProxy's path_beg does. Empty means "/".
	PathPrefix string `yaml:"path_prefix" check:"prefix"`
	// Backend names the backend that serves the route.
	Backend string `yaml:"backend"`
}

// router matches requests against routes in order; the first match wins.
type router struct {
	routes []compiledRoute
}

type compiledRoute struct {
	anyHost bool
	exact   string // lower-case host for exact matches
	suffix  string // ".example.com" for wildcard matches
	prefix  string
	target  *proxy
}

func (rt *router) add(r Route, target *proxy) {
	c := compiledRoute{prefix: r.PathPrefix, target: target}
	if c.prefix == "" {
		c.prefix = "/"
	}
	h := strings.ToLower(r.Host)
	switch {
	case h == "" || h == "*":
		c.anyHost = true
	case strings.HasPrefix(h, "*."):
		c.suffix = h[1:]
	default:
		c.exact = h
	}
	rt.routes = append(rt.routes, c)
}

// match returns the proxy for host and path, or nil.
func (rt *router) match(host, path string) *proxy {
	host = stripPort(host)
	for i := range rt.routes {
		c := &rt.routes[i]
		if !strings.HasPrefix(path, c.prefix) {
			continue
		}
		switch {
		case c.anyHost:
		case c.exact != "":
			if !strings.EqualFold(host, c.exact) {
				continue
			}
		default:
			if len(host) <= len(c.suffix) || !strings.EqualFold(host[len(host)-len(c.suffix):], c.suffix) {
				continue
			}
		}
		return c.target
	}
	return nil
}

// stripPort removes a trailing :port, keeping IPv6 literals intact.
func stripPort(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
		if h, _, err := net.SplitHostPort(host); err == nil {
			return strings.Trim(h, "[]")
		}
	}
	return strings.Trim(host, "[]")
}
