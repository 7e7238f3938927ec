package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldError is one problem with one key.
type FieldError struct {
	// Source is where the value came from: the file name, "env NAME" for
	// an environment variable, or "command line".
	Source string
	// Key is the dotted key path, with list indexes, e.g.
	// "backends.tomcat.servers[0].address"; empty for a problem with the
	// source as a whole, such as a YAML syntax error.
	Key string
	// Msg says what is wrong, and where useful what is expected.
	Msg string
}

func (e FieldError) Error() string {
	if e.Key == "" {
		return e.Source + ": " + e.Msg
	}
	return e.Source + ": " + e.Key + ": " + e.Msg
}

// Errors is every problem found in one configuration.
type Errors struct {
	List []FieldError
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, fe := range e.List {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find an individual FieldError.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, fe := range e.List {
		out[i] = fe
	}
	return out
}

// newErrors sorts list by key, list indexes numerically, so that related
// problems sit together whichever stage found them.
func newErrors(list []FieldError) *Errors {
	slices.SortStableFunc(list, func(a, b FieldError) int {
		return strings.Compare(sortableKey(a.Key), sortableKey(b.Key))
	})
	return &Errors{List: list}
}

var listIndex = regexp.MustCompile(`\[(\d+)\]`)

func sortableKey(key string) string {
	return listIndex.ReplaceAllStringFunc(key, func(m string) string {
		return fmt.Sprintf("[%010s]", m[1:len(m)-1])
	})
}

var backendName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// checker accumulates validation errors; source attributes a key to the
// file, an environment variable or the command line.
type checker struct {
	source func(key string) string
	errs   []FieldError
}

func (c *checker) fail(key, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Source: c.source(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func validate(cfg *Config, source func(key string) string) []FieldError {
	c := &checker{source: source}
	listenOK := c.address("listen", cfg.Listen, false, 0)
	adminOK := c.address("admin", cfg.Admin, true, 0)
	if listenOK && adminOK && sameSocket(cfg.Listen, cfg.Admin) {
		c.fail("admin", "%q conflicts with listen %q: they need different ports", cfg.Admin, cfg.Listen)
	}
	c.positive("shutdown_grace", cfg.ShutdownGrace)
	c.edge(cfg, listenOK, adminOK)
	for code, page := range cfg.ErrorPages {
		key := fmt.Sprintf("error_pages.%d", code)
		if code < 400 || code > 599 {
			c.fail(key, "unknown status code %d: use a number from 400 to 599", code)
		}
		if page.Path == "" && page.Body == nil {
			c.fail(key, "must name a file")
		}
	}

	names := make([]string, 0, len(cfg.Backends))
	for name := range cfg.Backends {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) == 0 {
		c.fail("backends", "at least one backend is required")
	}
	for _, name := range names {
		c.backend("backends."+name, name, cfg.Backends[name])
	}

	if len(cfg.Routes) == 0 {
		c.fail("routes", "at least one route is required")
	}
	seen := map[[2]string]int{}
	for i, r := range cfg.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if msg := checkRouteHost(r.Host); msg != "" {
			c.fail(key+".host", "%s", msg)
		}
		if !strings.HasPrefix(r.PathPrefix, "/") {
			c.fail(key+".path_prefix", "must start with \"/\", got %q", r.PathPrefix)
		}
		switch _, ok := cfg.Backends[r.Backend]; {
		case r.Backend == "":
			c.fail(key+".backend", "is required")
		case !ok:
			have := ""
			if len(names) > 0 {
				have = " (have " + strings.Join(names, ", ") + ")"
			}
			c.fail(key+".backend", "no backend named %q%s", r.Backend, have)
		}
		id := [2]string{strings.ToLower(r.Host), r.PathPrefix}
		if j, dup := seen[id]; dup {
			c.fail(key, "same host and path_prefix as routes[%d], so it can never match", j)
		} else {
			seen[id] = i
		}
	}
	return c.errs
}

// edge checks the client-facing keys besides listen and admin.
func (c *checker) edge(cfg *Config, listenOK, adminOK bool) {
	if cfg.TLSListen != "" && c.address("tls_listen", cfg.TLSListen, false, 0) {
		if listenOK && sameSocket(cfg.TLSListen, cfg.Listen) {
			c.fail("tls_listen", "%q conflicts with listen %q: they need different ports", cfg.TLSListen, cfg.Listen)
		}
		if adminOK && sameSocket(cfg.TLSListen, cfg.Admin) {
			c.fail("tls_listen", "%q conflicts with admin %q: they need different ports", cfg.TLSListen, cfg.Admin)
		}
	}
	if cfg.HTTP3 && cfg.TLSListen == "" {
		c.fail("http3", "requires tls_listen: HTTP/3 runs on its port over UDP")
	}
	if (cfg.TLSListen != "" || cfg.HTTP3) && len(cfg.TLSCerts) == 0 {
		c.fail("tls_certs", "at least one {cert, key} pair is required when tls_listen or http3 is set")
	}
	for i, p := range cfg.TLSCerts {
		key := fmt.Sprintf("tls_certs[%d]", i)
		if p.Cert == "" {
			c.fail(key+".cert", "is required (a PEM certificate chain file)")
		}
		if p.Key == "" {
			c.fail(key+".key", "is required (a PEM private key file)")
		}
	}
	l := cfg.Limits
	c.intRange("limits.max_conns", l.MaxConns, 1, 10000000)
	c.positive("limits.read_header_timeout", l.ReadHeaderTimeout)
	c.positive("limits.idle_timeout", l.IdleTimeout)
	c.intRange("limits.max_header_bytes", l.MaxHeaderBytes, 4096, MaxHeaderBytesLimit)
	c.intRange("limits.max_header_count", l.MaxHeaderCount, 1, 10000)
	if l.MaxRequestBody < 0 {
		c.fail("limits.max_request_body", "must be 0 (no limit) or a number of bytes, got %d", l.MaxRequestBody)
	}
	c.intRange("limits.h2_max_concurrent_streams", l.H2MaxConcurrentStreams, 1, 10000)
	c.intRange("limits.h2_max_resets_per_second", l.H2MaxResetsPerSecond, 0, 1000000)
	a := cfg.AccessLog
	c.oneOf("access_log.mode", a.Mode, AccessLogOff, AccessLogAll, AccessLogErrors, AccessLogSample)
	c.intRange("access_log.sample", a.Sample, 1, 1000000)
	c.oneOf("access_log.format", a.Format, FormatJSON, FormatText)
	if a.Path == "" {
		c.fail("access_log.path", "is required: %s, %s or a file", PathStdout, PathStderr)
	}
	for i, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			c.fail(fmt.Sprintf("trusted_proxies[%d]", i), "invalid network")
		}
	}
	if cfg.ProxyProtocol && len(cfg.ProxyProtocolFrom) == 0 {
		c.fail("proxy_protocol_from", "is required with proxy_protocol: true: the networks of the load balancers whose PROXY headers are believed (write 0.0.0.0/0 and ::/0 to believe any peer)")
	}
	for i, p := range cfg.ProxyProtocolFrom {
		if !p.IsValid() {
			c.fail(fmt.Sprintf("proxy_protocol_from[%d]", i), "invalid network")
		}
	}
}

func (c *checker) backend(key, name string, b Backend) {
	if !backendName.MatchString(name) {
		c.fail(key, "invalid backend name %q: use letters, digits, '_' and '-'", name)
	}
	c.oneOf(key+".protocol", b.Protocol, ProtocolAuto, ProtocolH2C, ProtocolH1)
	c.oneOf(key+".balance", b.Balance, BalanceRoundRobin, BalanceLeastRequest)
	if b.ProbeInterval < time.Second {
		c.fail(key+".probe_interval", "must be at least 1s, got %s", b.ProbeInterval)
	}

	if len(b.Servers) == 0 && b.Discovery.DNS == "" {
		c.fail(key+".servers", "at least one server is required, or discovery.dns")
	}
	c.discovery(key+".discovery", b.Discovery)
	seen := map[string]int{}
	primaries := 0
	for i, s := range b.Servers {
		if !s.Backup {
			primaries++
		}
		skey := fmt.Sprintf("%s.servers[%d]", key, i)
		if c.address(skey+".address", s.Address, true, 1) {
			id := canonicalAddress(s.Address)
			if j, dup := seen[id]; dup {
				c.fail(skey+".address", "%q duplicates servers[%d]; raise its weight instead", s.Address, j)
			} else {
				seen[id] = i
			}
		}
		c.intRange(skey+".weight", s.Weight, 1, 1000)
	}
	if len(b.Servers) > 0 && primaries == 0 && b.Discovery.DNS == "" {
		// Backups stand in for primaries that are down; with none, the
		// intent is unclear, so it is refused rather than guessed at.
		c.fail(key+".servers", "every server is a backup: at least one must have backup: false")
	}

	c.intRange(key+".h2c.conns_per_server", b.H2C.ConnsPerServer, 1, 64)
	c.intRange(key+".h2c.max_streams_per_conn", b.H2C.MaxStreamsPerConn, 1, 10000)
	c.intRange(key+".h1.conns_per_server", b.H1.ConnsPerServer, 1, 100000)
	c.positive(key+".h1.idle_timeout", b.H1.IdleTimeout)
	c.intRange(key+".h1.max_tunnels", b.H1.MaxTunnels, 1, 1000000)
	c.intRange(key+".queue.max_pending", b.Queue.MaxPending, 0, 1000000)
	c.positive(key+".queue.timeout", b.Queue.Timeout)
	c.positive(key+".timeouts.connect", b.Timeouts.Connect)
	c.positive(key+".timeouts.response_header", b.Timeouts.ResponseHeader)

	if b.H2C.PingInterval != 0 && b.H2C.PingInterval < time.Second {
		c.fail(key+".h2c.ping_interval", "must be 0 (off) or at least 1s, got %s", b.H2C.PingInterval)
	}
	c.positive(key+".h2c.ping_timeout", b.H2C.PingTimeout)
	c.positive(key+".timeouts.idle", b.Timeouts.Idle)
	if b.Timeouts.Total < 0 {
		c.fail(key+".timeouts.total", "must be 0 (no limit) or positive, got %s", b.Timeouts.Total)
	}
	c.intRange(key+".retries", b.Retries, 0, 10)
	c.intRange(key+".retry_body_limit", b.RetryBodyLimit, 0, 16<<20)
	for i, m := range b.IdempotentMethods {
		if !isToken(m) {
			c.fail(fmt.Sprintf("%s.idempotent_methods[%d]", key, i), "invalid method name %q", m)
		}
	}
	c.health(key+".health", b.Health)
	c.passive(key+".passive", b.Passive)
}

// dnsName matches a DNS name: dot-separated labels of letters, digits,
// '-' and '_' (SRV names start with _service._proto), with or without the
// final dot.
var dnsName = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$`)

func (c *checker) discovery(key string, d Discovery) {
	if d.DNS == "" {
		return
	}
	if len(d.DNS) > 254 || !dnsName.MatchString(d.DNS) {
		c.fail(key+".dns", "invalid DNS name %q", d.DNS)
	}
	c.oneOf(key+".type", d.Type, DiscoveryA, DiscoverySRV)
	if d.Type == DiscoverySRV {
		c.intRange(key+".port", d.Port, 0, 65535)
	} else {
		c.intRange(key+".port", d.Port, 1, 65535)
	}
	if d.Interval < time.Second {
		c.fail(key+".interval", "must be at least 1s, got %s", d.Interval)
	}
	if d.Resolver != "" {
		if ap, err := netip.ParseAddrPort(d.Resolver); err != nil || ap.Port() == 0 {
			c.fail(key+".resolver", "must be ip:port (a name server's address), got %q", d.Resolver)
		}
	}
}

func (c *checker) health(key string, h Health) {
	if !strings.HasPrefix(h.Path, "/") {
		c.fail(key+".path", "must start with \"/\", got %q", h.Path)
	} else if strings.ContainsAny(h.Path, " \t\r\n#") {
		c.fail(key+".path", "must be a request path without spaces or fragment, got %q", h.Path)
	}
	if !isToken(h.Method) {
		c.fail(key+".method", "invalid method name %q", h.Method)
	}
	if strings.ContainsAny(h.Host, " \t\r\n/?#@") {
		c.fail(key+".host", "must be a host name or host:port, got %q", h.Host)
	}
	c.intRange(key+".expect_status", h.ExpectStatus, 100, 599)
	c.positive(key+".interval", h.Interval)
	c.positive(key+".timeout", h.Timeout)
	if h.Interval > 0 && h.Timeout > h.Interval {
		// A check outliving the interval would overlap the next one.
		c.fail(key+".timeout", "must not exceed interval %s, got %s", h.Interval, h.Timeout)
	}
	c.intRange(key+".fall", h.Fall, 1, 100)
	c.intRange(key+".rise", h.Rise, 1, 100)
	if h.SlowStart < 0 {
		c.fail(key+".slow_start", "must be 0 (off) or positive, got %s", h.SlowStart)
	}
}

func (c *checker) passive(key string, p Passive) {
	c.intRange(key+".consecutive_failures", p.ConsecutiveFailures, 0, 1000)
	c.positive(key+".eject_for", p.EjectFor)
	if p.EjectFor > 0 && p.MaxEjectFor < p.EjectFor {
		c.fail(key+".max_eject_for", "must be at least eject_for %s, got %s", p.EjectFor, p.MaxEjectFor)
	}
	c.intRange(key+".max_ejected_percent", p.MaxEjectedPercent, 0, 100)
	if p.ProbeInterval < 100*time.Millisecond || p.ProbeInterval > time.Minute {
		// Faster would be a connection storm against a struggling
		// server; slower would leave a recovered one idle for minutes.
		c.fail(key+".probe_interval", "must be between 100ms and 1m, got %s", p.ProbeInterval)
	}
}

// isToken reports whether s is an RFC 9110 token, the syntax of a method.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ('a' <= ch && ch <= 'z') || ('A' <= ch && ch <= 'Z') || ('0' <= ch && ch <= '9') {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(ch)) {
			return false
		}
	}
	return true
}

func (c *checker) oneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		c.fail(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

func (c *checker) intRange(key string, v, lo, hi int) {
	if v < lo || v > hi {
		c.fail(key, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func (c *checker) positive(key string, d time.Duration) {
	if d <= 0 {
		c.fail(key, "must be positive, got %s", d)
	}
}

// address checks a host:port and reports whether it is usable.
func (c *checker) address(key, addr string, needHost bool, minPort int) bool {
	if addr == "" {
		c.fail(key, "is required (host:port)")
		return false
	}
	if strings.Contains(addr, "://") {
		c.fail(key, "must be host:port without a scheme, got %q", addr)
		return false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		msg := err.Error()
		if ae, ok := err.(*net.AddrError); ok {
			msg = ae.Err
		}
		c.fail(key, "%s %q", msg, addr)
		return false
	}
	if needHost && host == "" {
		hint := ""
		if minPort == 0 {
			hint = fmt.Sprintf(" (use 0.0.0.0:%s for all interfaces)", port)
		}
		c.fail(key, "missing host in address %q%s", addr, hint)
		return false
	}
	if strings.ContainsAny(host, " \t/") {
		c.fail(key, "invalid host in address %q", addr)
		return false
	}
	if p, err := strconv.Atoi(port); err != nil || p < minPort || p > 65535 {
		c.fail(key, "port must be a number from %d to 65535 in address %q", minPort, addr)
		return false
	}
	return true
}

// canonicalAddress makes "Tomcat-1:08080" and "tomcat-1:8080" compare
// equal; both would open connections to the same server.
func canonicalAddress(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(strings.ToLower(host), strconv.Itoa(p))
}

// sameSocket reports whether two valid listen addresses would collide,
// counting an empty or unspecified host as every interface.
func sameSocket(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	if na != nb || na == 0 {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return wild(ha) || wild(hb) || strings.EqualFold(ha, hb)
}

// checkRouteHost returns what is wrong with a route host, or "".
func checkRouteHost(h string) string {
	if h == "*" {
		return ""
	}
	name := strings.TrimPrefix(h, "*.")
	switch {
	case h == "":
		return `is required: "*" or a hostname`
	case strings.Contains(name, ":"):
		return fmt.Sprintf("must be a hostname without port, got %q", h)
	case strings.Contains(name, "*"):
		return fmt.Sprintf(`wildcard must be "*" or a leading "*.", got %q`, h)
	case len(name) > 253:
		return "hostname longer than 253 characters"
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || strings.Trim(strings.ToLower(label), "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Sprintf("invalid hostname %q", h)
		}
	}
	return ""
}
