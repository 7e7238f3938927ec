package h1

import "bytes"

// Field is one header field as received: its name keeps the client's case
// and its value has the surrounding whitespace removed. Both are slices of
// the buffer given to ParseHead.
type Field struct {
	Name, Value []byte
}

// Framing is how a request's body is delimited (RFC 9112 6.3).
type Framing uint8

const (
	NoBody  Framing = iota // neither Content-Length nor Transfer-Encoding
	Length                 // Content-Length bytes
	Chunked                // Transfer-Encoding: chunked
)

// Request is one parsed request head. ParseHead reuses Fields' storage, so
// a Request kept per connection costs no allocation per request; it
// leaves that storage zero past Fields' length.
type Request struct {
	Method []byte
	Target []byte
	Minor  int     // HTTP/1.Minor: 0 or 1
	Fields []Field // in the order received, Host and framing fields included
	Host   []byte  // the Host field's value; nil on an HTTP/1.0 request without one

	Framing       Framing
	ContentLength int64 // with Framing Length

	// From Connection, Expect, TE and Upgrade.
	Close      bool // Connection: close, or HTTP/1.0 without keep-alive
	Upgrade    bool // an Upgrade field is present
	Expect     bool // an Expect field is present
	Expect100  bool // Expect: 100-continue
	TETrailers bool // TE lists trailers: the client takes a chunked response's trailers
}

// Limits bound a request head.
type Limits struct {
	// MaxHeadBytes is the most a head may take, leading empty lines,
	// request line and final CRLF included; a longer one is refused with
	// ErrHeadTooLarge (431). Zero means DefaultMaxHeadBytes.
	MaxHeadBytes int
	// MaxFields caps the header fields; more are refused with
	// ErrTooManyFields (431). Zero means no limit beyond MaxHeadBytes.
	MaxFields int
	// MaxTargetBytes caps the request target; a longer one is refused
	// with ErrTargetTooLong (414). Zero means no limit beyond
	// MaxHeadBytes.
	MaxTargetBytes int
}

// DefaultMaxHeadBytes is Limits.MaxHeadBytes when zero.
const DefaultMaxHeadBytes = 32<<10 + 4096

func (l Limits) maxHead() int {
	if l.MaxHeadBytes > 0 {
		return l.MaxHeadBytes
	}
	return DefaultMaxHeadBytes
}

// ParseHead parses the request head at the start of buf into req. It
// returns the head's length, final empty line included, or ErrIncomplete
// while buf holds no complete head within the limits, or an *Error.
// Empty lines (CRLF) before the request line are skipped (RFC 9112 2.2).
// req's byte slices point into buf.
func ParseHead(buf []byte, lim Limits, req *Request) (int, error) {
	maxHead := lim.maxHead()
	pos := 0
	for {
		if pos+2 > len(buf) {
			if pos+1 == len(buf) && buf[pos] == '\n' {
				return 0, ErrBareLF
			}
			return 0, incomplete(buf, pos, lim)
		}
		if buf[pos] == '\r' && buf[pos+1] == '\n' {
			pos += 2
			continue
		}
		if buf[pos] == '\n' {
			return 0, ErrBareLF
		}
		break
	}
	line, next, err := nextLine(buf, pos)
	if err != nil {
		if err == ErrIncomplete {
			return 0, incomplete(buf, pos, lim)
		}
		return 0, err
	}
	if next > maxHead {
		return 0, overLimitOrHead(buf[pos:], lim)
	}
	if err := parseRequestLine(line, lim, req); err != nil {
		return 0, err
	}
	// The last head's fields are cleared, so that Fields' storage past
	// its length is always zero (putFields clears only up to it).
	clear(req.Fields)
	*req = Request{Method: req.Method, Target: req.Target, Minor: req.Minor, Fields: req.Fields[:0], ContentLength: 0}
	var h fieldState
	for {
		pos = next
		line, next, err = nextLine(buf, pos)
		if err == ErrIncomplete && len(buf) > maxHead {
			return 0, ErrHeadTooLarge
		}
		if err != nil {
			return 0, err
		}
		if next > maxHead {
			return 0, ErrHeadTooLarge
		}
		if len(line) == 0 {
			break
		}
		f, err := parseField(line)
		if err != nil {
			return 0, err
		}
		if lim.MaxFields > 0 && len(req.Fields) >= lim.MaxFields {
			return 0, ErrTooManyFields
		}
		req.Fields = append(req.Fields, f)
		if err := h.note(req, f); err != nil {
			return 0, err
		}
	}
	if err := h.finish(req); err != nil {
		return 0, err
	}
	return next, nil
}

// incomplete is the verdict on a buf without a complete head, whose
// request line starts at pos: over a limit, or ErrIncomplete.
func incomplete(buf []byte, pos int, lim Limits) error {
	if len(buf) > lim.maxHead() {
		return overLimitOrHead(buf[pos:], lim)
	}
	if err := overLimit(buf[pos:], lim); err != nil {
		return err
	}
	return ErrIncomplete
}

// overLimitOrHead is overLimit for a head known to be over the limit,
// leading empty lines included.
func overLimitOrHead(rl []byte, lim Limits) error {
	if err := overLimit(rl, lim); err != nil {
		return err
	}
	return ErrHeadTooLarge
}

// overLimit tells which limit a head starting with rl (its request line,
// perhaps unfinished) is over: the target's, or else the head's. It is nil
// when the request line is within the target limit and the head within
// its own.
func overLimit(rl []byte, lim Limits) error {
	if lim.MaxTargetBytes > 0 {
		if sp := bytes.IndexByte(rl, ' '); sp >= 0 {
			t := rl[sp+1:]
			if e := bytes.IndexAny(t, " \r\n"); e >= 0 {
				t = t[:e]
			}
			if len(t) > lim.MaxTargetBytes {
				return ErrTargetTooLong
			}
		}
	}
	if len(rl) > lim.maxHead() {
		return ErrHeadTooLarge
	}
	return nil
}

// nextLine returns the line starting at pos without its CRLF, and where
// the next begins. A line ending in a bare LF is refused.
func nextLine(buf []byte, pos int) (line []byte, next int, err error) {
	i := bytes.IndexByte(buf[pos:], '\n')
	if i < 0 {
		return nil, 0, ErrIncomplete
	}
	if i == 0 || buf[pos+i-1] != '\r' {
		return nil, 0, ErrBareLF
	}
	return buf[pos : pos+i-1], pos + i + 1, nil
}

// parseRequestLine reads method SP request-target SP HTTP-version.
func parseRequestLine(line []byte, lim Limits, req *Request) error {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return ErrRequestLine
	}
	method := line[:sp]
	if len(method) == 0 || !isToken(method) {
		return ErrMethod
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp < 0 {
		return ErrRequestLine
	}
	target, version := rest[:sp], rest[sp+1:]
	if lim.MaxTargetBytes > 0 && len(target) > lim.MaxTargetBytes {
		return ErrTargetTooLong
	}
	if !validTarget(method, target) {
		return ErrTarget
	}
	switch string(version) {
	case "HTTP/1.1":
		req.Minor = 1
	case "HTTP/1.0":
		req.Minor = 0
	default:
		return ErrVersion
	}
	req.Method, req.Target = method, target
	return nil
}

// validTarget accepts the four forms of RFC 9112 3.2, of the characters
// RFC 3986 allows in them (Tomcat refuses the others too): origin-form,
// absolute-form (http and https), authority-form only with CONNECT,
// asterisk-form only with OPTIONS.
func validTarget(method, t []byte) bool {
	if len(t) == 0 {
		return false
	}
	switch {
	case string(method) == "CONNECT":
		return validAuthority(t)
	case t[0] == '/':
		return validPathQuery(t)
	case len(t) == 1 && t[0] == '*':
		return string(method) == "OPTIONS"
	}
	lower := bytes.ToLower(t[:min(len(t), 8)])
	for _, scheme := range []string{"http://", "https://"} {
		if bytes.HasPrefix(lower, []byte(scheme)) {
			rest := t[len(scheme):]
			e := bytes.IndexAny(rest, "/?")
			if e < 0 {
				return validAuthority(rest)
			}
			return validAuthority(rest[:e]) && validPathQuery(rest[e:])
		}
	}
	return false
}

// uriChars marks the bytes a path and query may hold as they are:
// unreserved, sub-delims, ":", "@", "/" and "?" (RFC 3986 3.3, 3.4).
// hostChars marks those of a reg-name: unreserved and sub-delims.
var uriChars, hostChars = func() (u, h [256]bool) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || bytes.IndexByte([]byte("-._~!$&'()*+,;="), b) >= 0 {
			u[c], h[c] = true, true
		}
	}
	for _, c := range ":@/?" {
		u[c] = true
	}
	return u, h
}()

// validPathQuery checks a path and query.
func validPathQuery(t []byte) bool { return validChars(t, &uriChars) }

// validChars checks that t holds only allowed bytes, and a percent sign
// only before two hex digits (pct-encoded, RFC 3986 2.1).
func validChars(t []byte, allowed *[256]bool) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c == '%' {
			if i+2 >= len(t) || unhex(t[i+1]) < 0 || unhex(t[i+2]) < 0 {
				return false
			}
			i += 2
			continue
		}
		if !allowed[c] {
			return false
		}
	}
	return true
}

// validAuthority checks host[:port]: a reg-name, IPv4 address or IP
// literal in brackets, and a port of digits; no userinfo.
func validAuthority(a []byte) bool {
	host, port := a, []byte(nil)
	if len(a) > 0 && a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 0 {
			return false
		}
		for _, c := range a[1:end] {
			if unhex(c) < 0 && c != ':' && c != '.' {
				return false
			}
		}
		host, port = a[:end+1], a[end+1:]
		if len(port) > 0 {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
			if !isDigits(port) {
				return false
			}
		}
		return end > 1
	}
	if i := bytes.LastIndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
		if !isDigits(port) {
			return false
		}
	}
	return len(host) > 0 && validChars(host, &hostChars)
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// parseField reads one field line: a token, a colon right after it, and a
// value of visible characters, spaces and tabs (obs-text allowed).
func parseField(line []byte) (Field, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return Field{}, ErrObsFold
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return Field{}, ErrFieldLine
	}
	name := line[:colon]
	if !isToken(name) {
		if bytes.ContainsAny(name, " \t") {
			return Field{}, ErrSpaceBeforeColon
		}
		return Field{}, ErrFieldName
	}
	v := line[colon+1:]
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return Field{}, ErrFieldValue
		}
	}
	return Field{Name: name, Value: trimOWS(v)}, nil
}

func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// framing collects what a head's framing and connection fields say. The
// request and the response parsers share it, so that both read
// Content-Length, Transfer-Encoding and Connection by the same rules.
type framing struct {
	cl, te    bool
	length    int64  // the Content-Length, when cl
	clValue   []byte // its value as sent (a slice of the head being read)
	keepAlive bool   // Connection: keep-alive
	close     bool   // Connection: close
}

// note reads f when it is one of those fields, and reports whether it was.
func (h *framing) note(f Field) (bool, error) {
	switch {
	case equalFold(f.Name, "Content-Length"):
		n, ok := ParseContentLength(f.Value)
		if !ok {
			return true, ErrContentLength
		}
		// Repeats must match as sent, not only in value ("3" and "03"
		// differ), as net/http requires.
		if h.cl && !bytes.Equal(f.Value, h.clValue) {
			return true, ErrConflictingCL
		}
		h.cl, h.length, h.clValue = true, n, f.Value
	case equalFold(f.Name, "Transfer-Encoding"):
		if h.te {
			return true, ErrRepeatedTE
		}
		h.te = true
		if !equalFold(f.Value, "chunked") {
			return true, ErrTransferEncoding
		}
	case equalFold(f.Name, "Connection"):
		eachToken(f.Value, func(t []byte) {
			switch {
			case equalFold(t, "close"):
				h.close = true
			case equalFold(t, "keep-alive"):
				h.keepAlive = true
			}
		})
	default:
		return false, nil
	}
	return true, nil
}

// check applies the rules that need the whole head: chunked only on
// HTTP/1.1 and never with a Content-Length. It reports whether the
// connection closes after this message (Connection: close, or HTTP/1.0
// without keep-alive).
func (h *framing) check(minor int) (closes bool, err error) {
	switch {
	case h.te && h.cl:
		return false, ErrTEWithCL
	case h.te && minor == 0:
		return false, ErrTEOnHTTP10
	}
	return h.close || minor == 0 && !h.keepAlive, nil
}

// fieldState collects what a request head's fields say.
type fieldState struct {
	framing
	host bool
}

func (h *fieldState) note(req *Request, f Field) error {
	if ok, err := h.framing.note(f); ok {
		return err
	}
	switch {
	case equalFold(f.Name, "Host"):
		if h.host {
			return ErrHost
		}
		h.host = true
		req.Host = f.Value
	case equalFold(f.Name, "Upgrade"):
		req.Upgrade = true
	case equalFold(f.Name, "Expect"):
		req.Expect = true
		if equalFold(f.Value, "100-continue") {
			req.Expect100 = true
		}
	case equalFold(f.Name, "TE"):
		eachToken(f.Value, func(t []byte) {
			if equalFold(t, "trailers") {
				req.TETrailers = true
			}
		})
	}
	return nil
}

func (h *fieldState) finish(req *Request) error {
	if req.Minor == 1 && !h.host {
		return ErrHost
	}
	closes, err := h.check(req.Minor)
	if err != nil {
		return err
	}
	req.Close = closes
	switch {
	case h.te:
		req.Framing = Chunked
	case h.cl:
		req.Framing, req.ContentLength = Length, h.length
	}
	return nil
}

// eachToken calls fn for each element of a comma-separated list, trimmed.
func eachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		t := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if t = trimOWS(t); len(t) > 0 {
			fn(t)
		}
	}
}

// ParseContentLength reads a Content-Length value: decimal digits only (no
// sign, no spaces, no list), at most 18 of them so that it cannot
// overflow.
func ParseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// equalFold is bytes.EqualFold against an ASCII constant.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		d := s[i]
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// tokenChars marks the tchar bytes of RFC 9110 5.6.2.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return len(b) > 0
}
