package config

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-gw/sluice/gateway"
	"github.com/sluice-gw/sluice/upstream"
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
	// Relative paths are relative to the config file, not to wherever
	// the service manager happens to start the process.
	return parse(data, path, filepath.Dir(path), environ)
}

// Parse is Load for YAML already in memory; source names it in errors.
// Relative paths are taken relative to the working directory.
func Parse(data []byte, source string, environ []string) (*Config, error) {
	return parse(data, source, "", environ)
}

func parse(data []byte, source, baseDir string, environ []string) (*Config, error) {
	d := &decoder{file: source, baseDir: baseDir, envOf: map[string]string{}, failed: map[string]bool{}}
	var raw any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		d.fail(source, "", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, d.err()
	}
	root, ok := normalize(raw).(map[string]any)
	if !ok && raw != nil {
		d.fail(source, "", "must be a mapping of keys to values, got %s", describe(raw))
		return nil, d.err()
	}
	if root == nil {
		root = map[string]any{}
	}
	d.applyEnv(root, environ)

	c := Default()
	t := reflect.TypeFor[Config]()
	fields := fieldsOf(t)
	d.decodeStruct(scope{known: leafNames(t, fields, "")}, "", root, reflect.ValueOf(c).Elem(), fields)
	c.complete()
	d.readErrorPages(c)
	d.readAdminToken(c)
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

// normalize turns the maps yaml.v3 gives for mappings with non-string keys
// (error_pages: {503: ...}) into map[string]any, so that every mapping in
// the tree has one type.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

// decoder fills a Config from a YAML tree, collecting errors.
type decoder struct {
	file    string
	baseDir string            // joined to relative paths; "" = working directory
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

func (d *decoder) fromEnv(key string) bool {
	_, ok := d.envOf[key]
	return ok
}

// applyEnv writes the SLUICE_ variables of environ into the tree, as
// strings, before anything is decoded.
func (d *decoder) applyEnv(root map[string]any, environ []string) {
	var backends []string
	if m, ok := root["backends"].(map[string]any); ok {
		for name := range m {
			backends = append(backends, name)
		}
		slices.Sort(backends)
	}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || name == envLogLevel {
			continue
		}
		path := d.envPath(name, backends)
		if path == nil {
			continue
		}
		key := strings.Join(path, ".")
		if prev, ok := d.envOf[key]; ok {
			d.fail("env "+name, key, "also set by %s", prev)
			continue
		}
		d.envOf[key] = name
		if k, ok := setIn(root, path, value); !ok {
			d.failed[k] = true
			d.fail("env "+name, k, "cannot be set from the environment: it is a list in %s", d.file)
		}
	}
}

// setIn sets the key at path in the tree, making the mappings on the way;
// where the way crosses a list it fails, naming the list's key.
func setIn(node map[string]any, path []string, value string) (string, bool) {
	for i, p := range path[:len(path)-1] {
		switch next := node[p].(type) {
		case map[string]any:
			node = next
		case []any:
			return strings.Join(path[:i+1], "."), false
		default:
			m := map[string]any{}
			node[p], node = m, m
		}
	}
	node[path[len(path)-1]] = value
	return "", true
}

// envPath maps an environment variable to a key path, or nil to skip it.
func (d *decoder) envPath(name string, backends []string) []string {
	parts := strings.Split(strings.ToLower(strings.TrimPrefix(name, envPrefix)), envLevel)
	for _, p := range parts {
		if p == "" || strings.Contains(p, ".") {
			d.fail("env "+name, "", "cannot map to a config key: use SLUICE_ then key names joined by %q, e.g. SLUICE_BACKENDS__NAME__QUEUE__TIMEOUT", envLevel)
			return nil
		}
	}
	if parts[0] != "backends" || len(parts) == 1 {
		return parts
	}
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
		return nil
	case 1:
		parts[1] = match[0]
		return parts
	}
	d.fail("env "+name, key, "ambiguous: backends %s differ only in case", strings.Join(match, ", "))
	return nil
}

// scope is the mapping that unknown keys are reported against: the file,
// a backend, or an element of a list.
type scope struct {
	prefix string   // the scope's key with a trailing dot, or ""
	known  []string // its keys, relative to it, nested sections flattened
}

// decodeStruct decodes the keys of mapping m into v, a struct with fields.
func (d *decoder) decodeStruct(sc scope, key string, m map[string]any, v reflect.Value, fields []*field) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		k := joinKey(key, name)
		i := slices.IndexFunc(fields, func(f *field) bool { return f.name == name })
		switch {
		case i < 0:
			d.unknown(sc, k, m[name])
		case fields[i].sub != nil:
			d.section(sc, k, m[name], v, fields[i].sub, "")
		default:
			d.value(sc, k, m[name], v.Field(fields[i].index), fields[i].check)
		}
	}
}

// section decodes raw, which must be a mapping, into v; null or {} only
// means "defaults". want, if set, describes the expected mapping.
func (d *decoder) section(sc scope, key string, raw any, v reflect.Value, fields []*field, want string) {
	if isEmptyMap(raw) {
		return
	}
	m, ok := raw.(map[string]any)
	if !ok {
		d.failKey(key, "must be a mapping%s, got %s", want, describe(raw))
		return
	}
	d.decodeStruct(sc, key, m, v, fields)
}

// unknown reports key, or every key below it when its value is a mapping,
// suggesting the closest known key when the difference looks like a typo.
func (d *decoder) unknown(sc scope, key string, v any) {
	if m, ok := v.(map[string]any); ok && len(m) > 0 {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			d.unknown(sc, key+"."+name, m[name])
		}
		return
	}
	rel := strings.TrimPrefix(key, sc.prefix)
	best, bestDist := "", 3
	for _, k := range sc.known {
		if dist := editDistance(rel, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		d.failKey(key, "unknown key (did you mean %s%s?)", sc.prefix, best)
		return
	}
	d.failKey(key, "unknown key")
}

// defaults gives the elements of lists and named sets their defaults
// before their keys are decoded; other types start from zero.
var defaults = map[reflect.Type]func() any{
	reflect.TypeFor[upstream.Config]():       func() any { return upstream.DefaultConfig() },
	reflect.TypeFor[upstream.ServerConfig](): func() any { return upstream.DefaultServerConfig() },
	reflect.TypeFor[gateway.Route]():         func() any { return defaultRoute() },
}

func newElem(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	if def, ok := defaults[t]; ok {
		v.Set(reflect.ValueOf(def()))
	}
	return v
}

// normalizers canonicalise strings with these checks as they are decoded.
var normalizers = map[string]func(string) string{
	// Method names are case-sensitive on the wire, but a lower-case "get"
	// in a config file means GET, not a method Tomcat rejects.
	"method":  strings.ToUpper,
	"methods": strings.ToUpper,
	// Route hosts match case-insensitively; stored lowercased.
	"routehost": strings.ToLower,
}

// value decodes raw into out; null keeps the default.
func (d *decoder) value(sc scope, key string, raw any, out reflect.Value, check string) {
	if raw == nil {
		return
	}
	t := out.Type()
	switch {
	case t == durationType:
		if dur, ok := d.duration(key, raw); ok {
			out.SetInt(int64(dur))
		}
	case t == prefixesType:
		out.Set(reflect.ValueOf(d.prefixes(key, raw)))
	case t == pagesType:
		d.errorPages(key, raw, out)
	case isSection(t):
		d.section(sc, key, raw, out, fieldsOf(t), "")
	case t.Kind() == reflect.Slice && isSection(t.Elem()):
		d.list(key, raw, out)
	case t.Kind() == reflect.Map && isSection(t.Elem()):
		d.named(key, raw, out)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		out.Set(reflect.ValueOf(d.strings(key, raw, check)))
	case t.Kind() == reflect.String:
		if s, ok := raw.(string); ok {
			if norm := normalizers[check]; norm != nil {
				s = norm(s)
			}
			out.SetString(s)
		} else {
			d.failKey(key, "must be a string, got %s", describe(raw))
		}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		// int is 64 bits on every platform Sluice is built for.
		if n, ok := d.integer(key, raw); ok {
			out.SetInt(int64(n))
		}
	case t.Kind() == reflect.Bool:
		if b, ok := d.boolean(key, raw); ok {
			out.SetBool(b)
		}
	default:
		panic(fmt.Sprintf("config: no decoder for %s (key %s)", t, key))
	}
}

// list decodes a list of sections, each element starting from its
// defaults; nil when empty, so that "[]" and an absent key decode alike.
func (d *decoder) list(key string, raw any, out reflect.Value) {
	items, ok := raw.([]any)
	if !ok {
		msg := "must be a list, got %s"
		if d.fromEnv(key) {
			msg = "cannot be set from the environment (got %s); edit the config file"
		}
		d.failKey(key, msg, describe(raw))
		return
	}
	et := out.Type().Elem()
	fields := fieldsOf(et)
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	want := " with " + names[len(names)-1]
	if len(names) > 1 {
		want = " with " + strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
	}
	list := reflect.MakeSlice(out.Type(), 0, len(items))
	for i, item := range items {
		ikey := fmt.Sprintf("%s[%d]", key, i)
		elem := newElem(et)
		sc := scope{prefix: ikey + ".", known: leafNames(et, fields, "")}
		d.section(sc, ikey, item, elem, fields, want)
		if item == nil {
			d.failKey(ikey, "must be a mapping%s, got null", want)
		}
		list = reflect.Append(list, elem)
	}
	if list.Len() > 0 {
		out.Set(list)
	}
}

// named decodes a mapping of names to sections (backends), each starting
// from its defaults.
func (d *decoder) named(key string, raw any, out reflect.Value) {
	m, ok := raw.(map[string]any)
	if !ok {
		if isEmptyMap(raw) {
			return
		}
		d.failKey(key, "must be a mapping of %s names to %s, got %s", strings.TrimSuffix(key, "s"), key, describe(raw))
		return
	}
	et := out.Type().Elem()
	fields := fieldsOf(et)
	if out.IsNil() {
		out.Set(reflect.MakeMap(out.Type()))
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		k := key + "." + name
		elem := newElem(et)
		d.section(scope{prefix: k + ".", known: leafNames(et, fields, "")}, k, m[name], elem, fields, "")
		out.SetMapIndex(reflect.ValueOf(name), elem)
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
		if d.fromEnv(key) {
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
		if d.fromEnv(key) {
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

// strings decodes a list of strings, normalised by check and without
// duplicates; nil when empty. Its only use is method names.
func (d *decoder) strings(key string, v any, check string) []string {
	items, ok := d.stringList(key, v)
	if !ok {
		d.failKey(key, "must be a list of method names, like [POST, PATCH], got %s", describe(v))
		return nil
	}
	var out []string
	for i, item := range items {
		s, ok := item.(string)
		if !ok {
			d.failKey(fmt.Sprintf("%s[%d]", key, i), "must be a method name, got %s", describe(item))
			continue
		}
		if norm := normalizers[check]; norm != nil {
			s = norm(s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
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
		if !d.fromEnv(key) {
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

// errorPages decodes the mapping of status codes to files; the files are
// read later by readErrorPages.
func (d *decoder) errorPages(key string, raw any, out reflect.Value) {
	m, ok := raw.(map[string]any)
	if !ok {
		d.failKey(key, "must be a mapping of status codes to files, like {503: /etc/sluice/503.html}, got %s", describe(raw))
		return
	}
	pages := out.Interface().(map[int]ErrorPage)
	for codeText, v := range m {
		k := key + "." + codeText
		code, err := strconv.Atoi(codeText)
		if err != nil {
			d.failKey(k, "unknown status code %q: use a number from 400 to 599", codeText)
			continue
		}
		if code < 400 || code > 599 {
			// Checked here as well as in validate so that the file of a
			// page that can never be used is not read and complained about.
			d.failKey(k, "unknown status code %d: use a number from 400 to 599", code)
			continue
		}
		switch p := v.(type) {
		case nil:
			// "503: null" means no page for 503.
		case string:
			if strings.TrimSpace(p) == "" {
				d.failKey(k, "must name a file")
				continue
			}
			if pages == nil {
				pages = map[int]ErrorPage{}
			}
			pages[code] = ErrorPage{Path: d.resolve(p)}
		default:
			d.failKey(k, "must be a file path, got %s", describe(v))
		}
	}
	out.Set(reflect.ValueOf(pages))
}

// resolve joins a relative path in a config file to the file's directory.
func (d *decoder) resolve(p string) string {
	if d.baseDir != "" && p != "" && !filepath.IsAbs(p) {
		return filepath.Join(d.baseDir, p)
	}
	return p
}

// readErrorPages loads every error page file, so that a missing or
// unreadable page stops the start instead of surfacing as a bare error
// during an outage.
func (d *decoder) readErrorPages(c *Config) {
	for code, page := range c.ErrorPages {
		key := fmt.Sprintf("error_pages.%d", code)
		body, err := readLimited(page.Path, MaxErrorPageBytes)
		if err != nil {
			d.failKey(key, "%v", err)
			continue
		}
		page.Body = body
		c.ErrorPages[code] = page
	}
}

// readAdminToken fills AdminToken from AdminTokenFile.
func (d *decoder) readAdminToken(c *Config) {
	const key = "admin_token_file"
	if c.AdminTokenFile == "" {
		return
	}
	if c.AdminToken != "" {
		d.failKey(key, "set admin_token or admin_token_file, not both")
		return
	}
	c.AdminTokenFile = d.resolve(c.AdminTokenFile)
	data, err := readLimited(c.AdminTokenFile, 4<<10)
	if err != nil {
		d.failKey(key, "%v", err)
		return
	}
	if c.AdminToken = strings.TrimSpace(string(data)); c.AdminToken == "" {
		d.failKey(key, "%s is empty", c.AdminTokenFile)
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
