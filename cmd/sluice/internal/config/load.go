package config

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/v2"
)

const (
	envPrefix = "SLUICE_"
	envLevel  = "__"
	// envLogLevel is read by the command before any config exists.
	envLogLevel = "SLUICE_LOG_LEVEL"
)

// Load reads the YAML file at path and returns the validated
// configuration, with environ (os.Environ() in production) applied on top
// as described in the package documentation.
func Load(path string, environ []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	// Relative error page paths are relative to the config file, not to
	// wherever the service manager happens to start the process.
	return parse(data, path, filepath.Dir(path), environ)
}

// Parse is Load for YAML already in memory; source names it in errors.
// Relative error page paths are taken relative to the working directory.
func Parse(data []byte, source string, environ []string) (*Config, error) {
	return parse(data, source, "", environ)
}

func parse(data []byte, source, baseDir string, environ []string) (*Config, error) {
	d := &decoder{file: source, baseDir: baseDir, envOf: map[string]string{}, failed: map[string]bool{}}
	raw, err := yaml.Parser().Unmarshal(data)
	if err != nil {
		d.fail(source, "", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, d.err()
	}
	names := d.backendNames(raw)

	k := koanf.New(".")
	if err := k.Load(mapProvider(raw), nil); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err := k.Load(env.Provider(".", env.Opt{
		Prefix:        envPrefix,
		EnvironFunc:   func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) { return d.envKey(name, names), value },
	}), nil); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}

	c := d.decode(k)
	d.readErrorPages(c)
	d.checkCerts(c)
	d.checkAccessLog(c)
	for _, fe := range validate(c, d.source) {
		// A value that failed to decode was left at its default or empty;
		// complaining about that as well would only add noise.
		if !d.failedUnder(fe.Key) {
			d.errs = append(d.errs, fe)
		}
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// mapProvider hands an already parsed map to koanf, so that a YAML syntax
// error is reported before koanf sees anything and the raw map can be
// inspected first.
type mapProvider map[string]any

func (m mapProvider) Read() (map[string]any, error) { return m, nil }

func (m mapProvider) ReadBytes() ([]byte, error) {
	return nil, errors.New("mapProvider supports Read only")
}

// decoder turns koanf's flattened keys into a Config, collecting errors.
type decoder struct {
	file    string
	baseDir string            // joined to relative error page paths; "" = working directory
	envOf   map[string]string // key -> environment variable that set it
	errs    []FieldError
	failed  map[string]bool // keys whose value could not be decoded
}

func (d *decoder) fail(source, key, format string, args ...any) {
	d.errs = append(d.errs, FieldError{Source: source, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) failKey(key, format string, args ...any) {
	d.failed[key] = true
	d.fail(d.source(key), key, format, args...)
}

// failedUnder reports whether key or one of its parents failed to decode.
func (d *decoder) failedUnder(key string) bool {
	for k := key; k != ""; k = parentKey(k) {
		if d.failed[k] {
			return true
		}
	}
	return false
}

// parentKey strips the last element: "a.b[0].c" -> "a.b[0]" -> "a.b" -> "a".
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	return newErrors(d.errs)
}

// source names where key's value came from. Environment variables can
// only set scalar keys and lists of strings (idempotent_methods), so an
// element of a list of objects came from the file.
func (d *decoder) source(key string) string {
	if name, ok := d.envOf[key]; ok {
		return "env " + name
	}
	if list, ok := strings.CutSuffix(key, "]"); ok {
		if i := strings.LastIndexByte(list, '['); i > 0 {
			if name, ok := d.envOf[list[:i]]; ok {
				return "env " + name
			}
		}
	}
	return d.file
}

// backendNames returns the backend names in the file, removing those
// containing the key delimiter: koanf would split them into nested keys
// and every key below would be reported as unknown.
func (d *decoder) backendNames(raw map[string]any) []string {
	m, ok := raw["backends"].(map[string]any)
	if !ok {
		return nil
	}
	var names []string
	for name := range m {
		if strings.Contains(name, ".") {
			d.fail(d.file, "backends", "invalid backend name %q: use letters, digits, '_' and '-'", name)
			delete(m, name)
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// envKey maps an environment variable to a key, or to "" to skip it.
func (d *decoder) envKey(name string, backends []string) string {
	if name == envLogLevel {
		return ""
	}
	parts := strings.Split(strings.ToLower(strings.TrimPrefix(name, envPrefix)), envLevel)
	for _, p := range parts {
		if p == "" || strings.Contains(p, ".") {
			d.fail("env "+name, "", "cannot map to a config key: use SLUICE_ then key names joined by %q, e.g. SLUICE_BACKENDS__NAME__QUEUE__TIMEOUT", envLevel)
			return ""
		}
	}
	if parts[0] == "backends" && len(parts) > 1 {
		var match []string
		for _, b := range backends {
			if strings.EqualFold(b, parts[1]) {
				match = append(match, b)
			}
		}
		key := strings.Join(parts[:2], ".")
		switch len(match) {
		case 0:
			d.fail("env "+name, key, "no backend %q in %s; the environment can override backends but not add them", parts[1], d.file)
			return ""
		case 1:
			parts[1] = match[0]
		default:
			d.fail("env "+name, key, "ambiguous: backends %s differ only in case", strings.Join(match, ", "))
			return ""
		}
	}
	key := strings.Join(parts, ".")
	if prev, ok := d.envOf[key]; ok {
		d.fail("env "+name, key, "also set by %s", prev)
		return ""
	}
	d.envOf[key] = name
	return key
}

// Field tables: the known keys of each object, relative to it, with a
// pointer to the field they fill. Dotted keys are nested sections.
var (
	topFields = map[string]func(*Config) any{
		"listen":          func(c *Config) any { return &c.Listen },
		"admin":           func(c *Config) any { return &c.Admin },
		"routes":          func(c *Config) any { return &c.Routes },
		"shutdown_grace":  func(c *Config) any { return &c.ShutdownGrace },
		"tls_listen":      func(c *Config) any { return &c.TLSListen },
		"tls_certs":       func(c *Config) any { return &c.TLSCerts },
		"http3":           func(c *Config) any { return &c.HTTP3 },
		"proxy_protocol":  func(c *Config) any { return &c.ProxyProtocol },
		"trusted_proxies": func(c *Config) any { return &c.TrustedProxies },
		"pprof":           func(c *Config) any { return &c.Pprof },

		"proxy_protocol_from": func(c *Config) any { return &c.ProxyProtocolFrom },

		"access_log.mode":   func(c *Config) any { return &c.AccessLog.Mode },
		"access_log.sample": func(c *Config) any { return &c.AccessLog.Sample },
		"access_log.format": func(c *Config) any { return &c.AccessLog.Format },
		"access_log.path":   func(c *Config) any { return &c.AccessLog.Path },

		"limits.max_conns":                 func(c *Config) any { return &c.Limits.MaxConns },
		"limits.read_header_timeout":       func(c *Config) any { return &c.Limits.ReadHeaderTimeout },
		"limits.idle_timeout":              func(c *Config) any { return &c.Limits.IdleTimeout },
		"limits.max_header_bytes":          func(c *Config) any { return &c.Limits.MaxHeaderBytes },
		"limits.max_header_count":          func(c *Config) any { return &c.Limits.MaxHeaderCount },
		"limits.max_request_body":          func(c *Config) any { return &c.Limits.MaxRequestBody },
		"limits.h2_max_concurrent_streams": func(c *Config) any { return &c.Limits.H2MaxConcurrentStreams },
		"limits.h2_max_resets_per_second":  func(c *Config) any { return &c.Limits.H2MaxResetsPerSecond },
	}
	// topSections are top-level mappings whose keys are in topFields.
	topSections = []string{"limits", "access_log"}
	certFields  = map[string]func(*CertPair) any{
		"cert": func(p *CertPair) any { return &p.Cert },
		"key":  func(p *CertPair) any { return &p.Key },
	}
	backendFields = map[string]func(*Backend) any{
		"protocol":                 func(b *Backend) any { return &b.Protocol },
		"balance":                  func(b *Backend) any { return &b.Balance },
		"probe_interval":           func(b *Backend) any { return &b.ProbeInterval },
		"servers":                  func(b *Backend) any { return &b.Servers },
		"h2c.conns_per_server":     func(b *Backend) any { return &b.H2C.ConnsPerServer },
		"h2c.max_streams_per_conn": func(b *Backend) any { return &b.H2C.MaxStreamsPerConn },
		"h1.conns_per_server":      func(b *Backend) any { return &b.H1.ConnsPerServer },
		"h1.idle_timeout":          func(b *Backend) any { return &b.H1.IdleTimeout },
		"h1.max_tunnels":           func(b *Backend) any { return &b.H1.MaxTunnels },
		"queue.max_pending":        func(b *Backend) any { return &b.Queue.MaxPending },
		"queue.timeout":            func(b *Backend) any { return &b.Queue.Timeout },
		"timeouts.connect":         func(b *Backend) any { return &b.Timeouts.Connect },
		"timeouts.response_header": func(b *Backend) any { return &b.Timeouts.ResponseHeader },
		"h2c.ping_interval":        func(b *Backend) any { return &b.H2C.PingInterval },
		"h2c.ping_timeout":         func(b *Backend) any { return &b.H2C.PingTimeout },
		"timeouts.idle":            func(b *Backend) any { return &b.Timeouts.Idle },
		"timeouts.total":           func(b *Backend) any { return &b.Timeouts.Total },
		"retries":                  func(b *Backend) any { return &b.Retries },
		"retry_body_limit":         func(b *Backend) any { return &b.RetryBodyLimit },
		"idempotent_methods":       func(b *Backend) any { return &b.IdempotentMethods },

		"discovery.dns":      func(b *Backend) any { return &b.Discovery.DNS },
		"discovery.type":     func(b *Backend) any { return &b.Discovery.Type },
		"discovery.port":     func(b *Backend) any { return &b.Discovery.Port },
		"discovery.interval": func(b *Backend) any { return &b.Discovery.Interval },
		"discovery.resolver": func(b *Backend) any { return &b.Discovery.Resolver },

		"health.enabled":       func(b *Backend) any { return &b.Health.Enabled },
		"health.path":          func(b *Backend) any { return &b.Health.Path },
		"health.method":        func(b *Backend) any { return &b.Health.Method },
		"health.host":          func(b *Backend) any { return &b.Health.Host },
		"health.expect_status": func(b *Backend) any { return &b.Health.ExpectStatus },
		"health.interval":      func(b *Backend) any { return &b.Health.Interval },
		"health.timeout":       func(b *Backend) any { return &b.Health.Timeout },
		"health.fall":          func(b *Backend) any { return &b.Health.Fall },
		"health.rise":          func(b *Backend) any { return &b.Health.Rise },
		"health.slow_start":    func(b *Backend) any { return &b.Health.SlowStart },

		"passive.consecutive_failures": func(b *Backend) any { return &b.Passive.ConsecutiveFailures },
		"passive.eject_for":            func(b *Backend) any { return &b.Passive.EjectFor },
		"passive.max_eject_for":        func(b *Backend) any { return &b.Passive.MaxEjectFor },
		"passive.max_ejected_percent":  func(b *Backend) any { return &b.Passive.MaxEjectedPercent },
		"passive.probe_interval":       func(b *Backend) any { return &b.Passive.ProbeInterval },
	}
	backendSections = []string{"h2c", "h1", "queue", "timeouts", "health", "passive", "discovery"}
	serverFields    = map[string]func(*Server) any{
		"address": func(s *Server) any { return &s.Address },
		"weight":  func(s *Server) any { return &s.Weight },
		"backup":  func(s *Server) any { return &s.Backup },
	}
	routeFields = map[string]func(*Route) any{
		"host":        func(r *Route) any { return &r.Host },
		"path_prefix": func(r *Route) any { return &r.PathPrefix },
		"backend":     func(r *Route) any { return &r.Backend },
	}
)

func (d *decoder) decode(k *koanf.Koanf) *Config {
	c := Default()
	for _, key := range k.Keys() {
		v := k.Get(key)
		if f, ok := topFields[key]; ok {
			d.value(f(c), key, v)
			continue
		}
		if key == "backends" {
			if !isEmptyMap(v) {
				d.failKey(key, "must be a mapping of backend names to backends, got %s", describe(v))
			}
			continue
		}
		if key == errorPagesKey || strings.HasPrefix(key, errorPagesKey+".") {
			d.errorPage(c, key, v)
			continue
		}
		if slices.Contains(topSections, key) {
			// null or {} only means "defaults".
			if !isEmptyMap(v) {
				d.failKey(key, "must be a mapping, got %s", describe(v))
			}
			continue
		}
		rest, ok := strings.CutPrefix(key, "backends.")
		if !ok {
			if !underLeaf(d, c, topFields, "", key) {
				d.unknown(key, "", keysOf(topFields, "backends", errorPagesKey))
			}
			continue
		}
		name, field, _ := strings.Cut(rest, ".")
		b, ok := c.Backends[name]
		if !ok {
			b = DefaultBackend()
		}
		d.backendField(&b, "backends."+name, field, v)
		c.Backends[name] = b
	}
	for i := range c.Routes {
		c.Routes[i].Host = strings.ToLower(c.Routes[i].Host)
	}
	for name, b := range c.Backends {
		// Method names are case-sensitive on the wire, but a lower-case
		// "get" in a config file means GET, not a method Tomcat rejects.
		b.Health.Method = strings.ToUpper(b.Health.Method)
		c.Backends[name] = b
	}
	return c
}

func (d *decoder) backendField(b *Backend, prefix, field string, v any) {
	key := prefix
	if field != "" {
		key += "." + field
	}
	if f, ok := backendFields[field]; ok {
		d.value(f(b), key, v)
		return
	}
	// A whole backend or section that is null or {} only means "defaults".
	if field == "" || slices.Contains(backendSections, field) {
		if !isEmptyMap(v) {
			d.failKey(key, "must be a mapping, got %s", describe(v))
		}
		return
	}
	if !underLeaf(d, b, backendFields, prefix+".", field) {
		d.unknown(key, prefix+".", keysOf(backendFields, backendSections...))
	}
}

// underLeaf reports whether rel lies below one of fields, which koanf
// produces when the file has a mapping where a string or list belongs,
// and reports that once for the field.
func underLeaf[T any](d *decoder, obj *T, fields map[string]func(*T) any, prefix, rel string) bool {
	for name, f := range fields {
		if strings.HasPrefix(rel, name+".") {
			if key := prefix + name; !d.failed[key] {
				d.value(f(obj), key, map[string]any{})
			}
			return true
		}
	}
	return false
}

// unknown reports key, suggesting the closest known key when the
// difference looks like a typo.
func (d *decoder) unknown(key, prefix string, known []string) {
	rel := strings.TrimPrefix(key, prefix)
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(rel, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		d.failKey(key, "unknown key (did you mean %s%s?)", prefix, best)
		return
	}
	d.failKey(key, "unknown key")
}

// value decodes v into the field ptr points to; null keeps the default.
func (d *decoder) value(ptr any, key string, v any) {
	if v == nil {
		return
	}
	switch p := ptr.(type) {
	case *string:
		if s, ok := v.(string); ok {
			*p = s
		} else {
			d.failKey(key, "must be a string, got %s", describe(v))
		}
	case *int:
		if n, ok := d.integer(key, v); ok {
			*p = n
		}
	case *int64:
		// int is 64 bits on every platform Sluice is built for.
		if n, ok := d.integer(key, v); ok {
			*p = int64(n)
		}
	case *time.Duration:
		if dur, ok := d.duration(key, v); ok {
			*p = dur
		}
	case *bool:
		if b, ok := d.boolean(key, v); ok {
			*p = b
		}
	case *[]string:
		*p = d.methods(key, v)
	case *[]Server:
		*p = decodeList(d, key, v, serverFields, defaultServer, "address and weight")
	case *[]Route:
		*p = decodeList(d, key, v, routeFields, defaultRoute, "host, path_prefix and backend")
	case *[]CertPair:
		// nil when empty, like the other optional lists, so that "[]"
		// and an absent key decode alike.
		if *p = decodeList(d, key, v, certFields, func() CertPair { return CertPair{} }, "cert and key"); len(*p) == 0 {
			*p = nil
		}
	case *[]netip.Prefix:
		*p = d.prefixes(key, v)
	default:
		panic(fmt.Sprintf("config: no decoder for %T", ptr))
	}
}

func (d *decoder) integer(key string, v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case uint64:
		d.failKey(key, "number %d is out of range", n)
		return 0, false
	case string:
		// Environment values are always strings; file values must be typed.
		if _, fromEnv := d.envOf[key]; fromEnv {
			i, err := strconv.Atoi(strings.TrimSpace(n))
			if err != nil {
				d.failKey(key, "must be an integer, got %q", n)
				return 0, false
			}
			return i, true
		}
	}
	d.failKey(key, "must be an integer, got %s", describe(v))
	return 0, false
}

func (d *decoder) boolean(key string, v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		// As for integers, only environment values may be strings.
		if _, fromEnv := d.envOf[key]; fromEnv {
			if v, err := strconv.ParseBool(strings.TrimSpace(b)); err == nil {
				return v, true
			}
			d.failKey(key, "must be true or false, got %q", b)
			return false, false
		}
	}
	d.failKey(key, "must be true or false, got %s", describe(v))
	return false, false
}

// methods decodes a list of HTTP method names, upper-cased, duplicates
// dropped, nil when empty.
func (d *decoder) methods(key string, v any) []string {
	items, ok := d.stringList(key, v)
	if !ok {
		d.failKey(key, "must be a list of method names, like [POST, PATCH], got %s", describe(v))
		return nil
	}
	var out []string
	for i, item := range items {
		m, ok := item.(string)
		if !ok {
			d.failKey(fmt.Sprintf("%s[%d]", key, i), "must be a method name, got %s", describe(item))
			continue
		}
		if m = strings.ToUpper(m); !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// stringList returns the items of a YAML list. The environment, which
// cannot express lists, gives them comma-separated ("POST,PATCH").
func (d *decoder) stringList(key string, v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case string:
		if _, fromEnv := d.envOf[key]; !fromEnv {
			return nil, false
		}
		var items []any
		for _, m := range strings.Split(x, ",") {
			if m = strings.TrimSpace(m); m != "" {
				items = append(items, m)
			}
		}
		return items, true
	}
	return nil, false
}

func (d *decoder) duration(key string, v any) (time.Duration, bool) {
	s, ok := v.(string)
	if !ok {
		if isNumber(v) {
			d.failKey(key, "must be a duration with a unit, like \"5s\" or \"250ms\", got bare number %v", v)
		} else {
			d.failKey(key, "must be a duration like \"5s\", got %s", describe(v))
		}
		return 0, false
	}
	s = strings.TrimSpace(s)
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		d.failKey(key, "must be a duration with a unit, like \"5s\" or \"250ms\", got bare number %s", s)
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.failKey(key, "invalid duration %q: use a number and unit, like \"5s\", \"1m30s\" or \"250ms\"", s)
		return 0, false
	}
	return dur, true
}

// decodeList decodes a YAML list of objects whose keys are in fields,
// starting each element from its defaults.
func decodeList[T any](d *decoder, key string, v any, fields map[string]func(*T) any, def func() T, want string) []T {
	list, ok := v.([]any)
	if !ok {
		msg := "must be a list, got %s"
		if _, fromEnv := d.envOf[key]; fromEnv {
			msg = "cannot be set from the environment (got %s); edit the config file"
		}
		d.failKey(key, msg, describe(v))
		return nil
	}
	out := make([]T, 0, len(list))
	for i, item := range list {
		ikey := fmt.Sprintf("%s[%d]", key, i)
		elem := def()
		m, ok := item.(map[string]any)
		if !ok {
			d.failKey(ikey, "must be a mapping with %s, got %s", want, describe(item))
			out = append(out, elem)
			continue
		}
		names := make([]string, 0, len(m))
		for name := range m {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			fkey := ikey + "." + name
			if f, ok := fields[name]; ok {
				d.value(f(&elem), fkey, m[name])
			} else {
				d.unknown(fkey, ikey+".", keysOf(fields))
			}
		}
		out = append(out, elem)
	}
	return out
}

func keysOf[T any](m map[string]T, extra ...string) []string {
	out := append([]string(nil), extra...)
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func isEmptyMap(v any) bool {
	m, ok := v.(map[string]any)
	return v == nil || (ok && len(m) == 0)
}

func isNumber(v any) bool {
	switch v.(type) {
	case int, int64, uint64, float64:
		return true
	}
	return false
}

// describe names a decoded YAML value for error messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case int, int64, uint64, float64:
		return fmt.Sprintf("number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// errorPagesKey is the top-level mapping of status codes to files.
const errorPagesKey = "error_pages"

// errorPage decodes key, which is error_pages itself or a key below it,
// into c.ErrorPages; the files are read later by readErrorPages.
func (d *decoder) errorPage(c *Config, key string, v any) {
	rest, ok := strings.CutPrefix(key, errorPagesKey+".")
	if !ok {
		// null or {} means no custom pages.
		if !isEmptyMap(v) {
			d.failKey(key, "must be a mapping of status codes to files, like {503: /etc/sluice/503.html}, got %s", describe(v))
		}
		return
	}
	// "503.x" comes from a mapping where a file path belongs.
	codeText, _, nested := strings.Cut(rest, ".")
	key = errorPagesKey + "." + codeText
	if d.failed[key] {
		return
	}
	code, err := strconv.Atoi(codeText)
	if err != nil {
		d.failKey(key, "unknown status code %q: use a number from 400 to 599", codeText)
		return
	}
	if code < 400 || code > 599 {
		// Checked here as well as in validate so that the file of a page
		// that can never be used is not read and complained about.
		d.failKey(key, "unknown status code %d: use a number from 400 to 599", code)
		return
	}
	if nested {
		v = map[string]any{}
	}
	switch p := v.(type) {
	case nil:
		// "503: null" means no page for 503.
		return
	case string:
		if strings.TrimSpace(p) == "" {
			d.failKey(key, "must name a file")
			return
		}
		if d.baseDir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(d.baseDir, p)
		}
		if c.ErrorPages == nil {
			c.ErrorPages = map[int]ErrorPage{}
		}
		c.ErrorPages[code] = ErrorPage{Path: p}
	default:
		d.failKey(key, "must be a file path, got %s", describe(v))
	}
}

// readErrorPages loads every error page file, so that a missing or
// unreadable page stops the start instead of surfacing as a bare error
// during an outage.
func (d *decoder) readErrorPages(c *Config) {
	for code, page := range c.ErrorPages {
		key := fmt.Sprintf("%s.%d", errorPagesKey, code)
		body, err := readLimited(page.Path, MaxErrorPageBytes)
		if err != nil {
			d.failKey(key, "%v", err)
			continue
		}
		page.Body = body
		c.ErrorPages[code] = page
	}
}

// readLimited reads a regular file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	body, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return body, nil
}
