package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gw/sluice/cmd/sluice/internal/adminapi"
	"github.com/sluice-gw/sluice/upstream"
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

// validate checks every key's `check` tag, then what involves more than
// one key.
func validate(cfg *Config, source func(key string) string) []FieldError {
	c := &checker{source: source}
	v := reflect.ValueOf(cfg).Elem()
	visit("", v, fieldsOf(v.Type()), c.checkField)

	listenOK := c.address("listen", cfg.Listen, false, 0)
	adminOK := c.address("admin", cfg.Admin, true, 0)
	if listenOK && adminOK && sameSocket(cfg.Listen, cfg.Admin) {
		c.fail("admin", "%q conflicts with listen %q: they need different ports", cfg.Admin, cfg.Listen)
	}
	c.adminToken(cfg, adminOK)
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

	names := slices.Sorted(maps.Keys(cfg.Backends))
	if len(names) == 0 {
		c.fail("backends", "at least one backend is required")
	}
	for _, name := range names {
		c.backend(name, cfg.Backends[name])
	}

	if len(cfg.Routes) == 0 {
		c.fail("routes", "at least one route is required")
	}
	seen := map[[2]string]int{}
	for i, r := range cfg.Routes {
		key := fmt.Sprintf("routes[%d]", i)
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

// checkField applies a `check` tag:
//
//	lo..hi               an integer or duration range; either end may be left out
//	positive             an integer or duration above zero
//	0(WHY)|RULE          zero, meaning WHY ("off", "no limit"), or RULE
//	a|b|c                one of these strings
//	NAME                 a check of stringChecks, for each element of a list
func (c *checker) checkField(key string, f *field, v reflect.Value) {
	rule := f.check
	if fn, ok := stringChecks[rule]; ok {
		if v.Kind() == reflect.String {
			if msg := fn(v.String()); msg != "" {
				c.fail(key, "%s", msg)
			}
			return
		}
		for i := range v.Len() {
			if msg := fn(v.Index(i).String()); msg != "" {
				c.fail(fmt.Sprintf("%s[%d]", key, i), "%s", msg)
			}
		}
		return
	}
	if v.Kind() == reflect.String {
		if allowed := strings.Split(rule, "|"); !slices.Contains(allowed, v.String()) {
			c.fail(key, "must be one of %s, got %q", strings.Join(allowed, ", "), v.String())
		}
		return
	}
	// Integers and durations (an int64) share the rules; only the
	// parsing of the bounds and the printing of the value differ.
	// A malformed tag is a programming error, found by any test that
	// validates a config.
	bad := func() { panic(fmt.Sprintf("config: %s: malformed check tag %q", key, f.check)) }
	n := v.Int()
	parse := func(s string) int64 {
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			bad()
		}
		return i
	}
	show := func(n int64) string { return strconv.FormatInt(n, 10) }
	if v.Type() == durationType {
		parse = func(s string) int64 {
			d, err := time.ParseDuration(s)
			if err != nil {
				bad()
			}
			return int64(d)
		}
		show = func(n int64) string { return time.Duration(n).String() }
	}
	zeroMeans := ""
	if first, rest, ok := strings.Cut(rule, "|"); ok {
		if !strings.HasPrefix(first, "0(") || !strings.HasSuffix(first, ")") {
			bad()
		}
		zeroMeans, rule = first[2:len(first)-1], rest
	}
	var ok bool
	var want string
	lo, hi, isRange := strings.Cut(rule, "..")
	switch {
	case !isRange && rule == "positive":
		ok, want = n > 0, "positive"
	case !isRange:
		bad()
	case hi == "":
		ok, want = n >= parse(lo), "at least "+lo
	default:
		ok, want = n >= parse(lo) && n <= parse(hi), "between "+lo+" and "+hi
	}
	switch {
	case ok || (zeroMeans != "" && n == 0):
	case zeroMeans != "":
		c.fail(key, "must be 0 (%s) or %s, got %s", zeroMeans, want, show(n))
	default:
		c.fail(key, "must be %s, got %s", want, show(n))
	}
}

// stringChecks are the named checks of strings; each returns what is
// wrong, or "".
var stringChecks = map[string]func(string) string{
	"method":    checkMethod,
	"methods":   checkMethod,
	"routehost": checkRouteHost,
	"prefix": func(p string) string {
		if !strings.HasPrefix(p, "/") {
			return fmt.Sprintf("must start with \"/\", got %q", p)
		}
		return ""
	},
	"target": func(p string) string {
		if !strings.HasPrefix(p, "/") {
			return fmt.Sprintf("must start with \"/\", got %q", p)
		}
		if strings.ContainsAny(p, " \t\r\n#") {
			return fmt.Sprintf("must be a request path without spaces or fragment, got %q", p)
		}
		return ""
	},
	"dnsname": func(n string) string {
		if n != "" && (len(n) > 254 || !dnsName.MatchString(n)) {
			return fmt.Sprintf("invalid DNS name %q", n)
		}
		return ""
	},
	"nameserver": func(a string) string {
		if ap, err := netip.ParseAddrPort(a); a != "" && (err != nil || ap.Port() == 0) {
			return fmt.Sprintf("must be ip:port (a name server's address), got %q", a)
		}
		return ""
	},
	"hostport": func(h string) string {
		if strings.ContainsAny(h, " \t\r\n/?#@") {
			return fmt.Sprintf("must be a host name or host:port, got %q", h)
		}
		return ""
	},
}

func checkMethod(m string) string {
	if !isToken(m) {
		return fmt.Sprintf("invalid method name %q", m)
	}
	return ""
}

// MinAdminToken is the shortest admin_token accepted.
const MinAdminToken = 16

// adminToken requires a token when the admin listener is not on loopback,
// and checks it can be sent in an Authorization header.
func (c *checker) adminToken(cfg *Config, adminOK bool) {
	key, tok := "admin_token", cfg.AdminToken
	if cfg.AdminTokenFile != "" {
		key = "admin_token_file"
	}
	if tok == "" {
		// An admin_token_file that could not be read is reported by Load.
		if cfg.AdminTokenFile == "" && adminOK && !adminapi.IsLoopback(cfg.Admin) {
			c.fail("admin_token", "required when admin %q is not a loopback address: the admin API needs a bearer token (or set admin_token_file)", cfg.Admin)
		}
		return
	}
	if len(tok) < MinAdminToken {
		c.fail(key, "the token must be at least %d characters, got %d", MinAdminToken, len(tok))
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			c.fail(key, "the token must be printable ASCII without spaces: it is sent in an Authorization header")
			break
		}
	}
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
		if p.CertFile == "" {
			c.fail(key+".cert", "is required (a PEM certificate chain file)")
		}
		if p.KeyFile == "" {
			c.fail(key+".key", "is required (a PEM private key file)")
		}
	}
	if cfg.AccessLog.Path == "" {
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

// backend checks what the tags of upstream.Config cannot say.
func (c *checker) backend(name string, b upstream.Config) {
	key := "backends." + name
	if !backendName.MatchString(name) {
		k := key
		if strings.Contains(name, ".") {
			// "backends.a.b" would read as a key inside backend a.
			k = "backends"
		}
		c.fail(k, "invalid backend name %q: use letters, digits, '_' and '-'", name)
		return // its keys would only add noise under a name to be changed
	}
	if len(b.Servers) == 0 && b.Discovery.Name == "" {
		c.fail(key+".servers", "at least one server is required, or discovery.dns")
	}
	if d := b.Discovery; d.Name != "" && d.Type == upstream.DNSTypeA && d.Port == 0 {
		c.fail(key+".discovery.port", "is required with type %s: the servers' port", upstream.DNSTypeA)
	}
	seen := map[string]int{}
	primaries := 0
	for i, s := range b.Servers {
		if !s.Backup {
			primaries++
		}
		skey := fmt.Sprintf("%s.servers[%d].address", key, i)
		if c.address(skey, s.Address, true, 1) {
			id := canonicalAddress(s.Address)
			if j, dup := seen[id]; dup {
				c.fail(skey, "%q duplicates servers[%d]; raise its weight instead", s.Address, j)
			} else {
				seen[id] = i
			}
		}
	}
	if len(b.Servers) > 0 && primaries == 0 && b.Discovery.Name == "" {
		// Backups stand in for primaries that are down; with none, the
		// intent is unclear, so it is refused rather than guessed at.
		c.fail(key+".servers", "every server is a backup: at least one must have backup: false")
	}
	if h := b.Health; h.Interval > 0 && h.Timeout > h.Interval {
		// A check outliving the interval would overlap the next one.
		c.fail(key+".health.timeout", "must not exceed interval %s, got %s", h.Interval, h.Timeout)
	}
	if p := b.Passive; p.EjectFor > 0 && p.MaxEjectFor < p.EjectFor {
		c.fail(key+".passive.max_eject_for", "must be at least eject_for %s, got %s", p.EjectFor, p.MaxEjectFor)
	}
}

// dnsName matches a DNS name: dot-separated labels of letters, digits,
// '-' and '_' (SRV names start with _service._proto), with or without the
// final dot.
var dnsName = regexp.MustCompile(`^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$`)

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
