package h1

// The response side of the parser: status line, fields and framing of a
// response head (RFC 9112 4 and 6.3), for Sluice's HTTP/1.1 upstream
// client (h1compat/client). Field lines and chunked bodies go through the
// same code as a request's.

import "bytes"

// UntilClose is a response's framing when it has neither Content-Length
// nor Transfer-Encoding and a status that allows a body: the body runs to
// the end of the connection (RFC 9112 6.3, rule 8). Requests never have it.
const UntilClose Framing = Chunked + 1

// Response is one parsed response head. ParseResponseHead reuses Fields'
// storage, so a Response kept per connection costs no allocation per
// response.
type Response struct {
	Minor  int     // HTTP/1.Minor: 0 or 1
	Status int     // 100 to 599
	Reason []byte  // the reason phrase, perhaps empty
	Fields []Field // in the order received, framing fields included

	// Framing is NoBody for answers that never have one (to HEAD, 1xx,
	// 204, 304), whatever their fields say; otherwise Length, Chunked or
	// UntilClose.
	Framing Framing
	// ContentLength is the Content-Length field's value, or -1 when there
	// is none: the body's length with Framing Length, and what a HEAD
	// answer announces.
	ContentLength int64

	// Close: the server ends the connection after this response
	// (Connection: close, an HTTP/1.0 answer without keep-alive, or a
	// body delimited by the close).
	Close bool
	// KeepAliveMax is the max parameter of a Keep-Alive field, the
	// requests the server still takes on the connection, or -1.
	KeepAliveMax int
	// Trailer: a Trailer field announces trailer fields.
	Trailer bool
}

// The response parser's refusals, beyond the field-line ones it shares
// with requests (ErrBareLF, ErrObsFold, ErrFieldLine, ErrSpaceBeforeColon,
// ErrFieldName, ErrFieldValue, ErrContentLength, ErrConflictingCL,
// ErrTEWithCL, ErrTransferEncoding, ErrRepeatedTE, ErrTEOnHTTP10). Their
// Status is what a gateway answers its client: 502.
var (
	ErrStatusLine           = &Error{502, "malformed status line", ClassStatusLine}
	ErrResponseHeadTooLarge = &Error{502, "response header fields too large", ClassHeaderTooLarge}
	ErrTooManyRespFields    = &Error{502, "too many response header fields", ClassTooManyHeaders}
)

// ClassStatusLine: a malformed response status line, version or code.
const ClassStatusLine = "bad_status_line"

// ParseResponseHead parses the response head at the start of buf into
// resp. head says the request was HEAD, whose answer has no body. It
// returns the head's length, final empty line included, or ErrIncomplete
// while buf holds no complete head within lim.MaxHeadBytes, or an *Error.
// resp's byte slices point into buf. An interim (1xx) head parses like
// any other; the caller reads the next one after it.
func ParseResponseHead(buf []byte, lim Limits, head bool, resp *Response) (int, error) {
	maxHead := lim.maxHead()
	line, next, err := nextLine(buf, 0)
	if err == ErrIncomplete && len(buf) > maxHead || err == nil && next > maxHead {
		return 0, ErrResponseHeadTooLarge
	}
	if err != nil {
		return 0, err
	}
	*resp = Response{Fields: resp.Fields[:0], ContentLength: -1, KeepAliveMax: -1}
	if err := parseStatusLine(line, resp); err != nil {
		return 0, err
	}
	var h respFieldState
	for {
		pos := next
		line, next, err = nextLine(buf, pos)
		if err == ErrIncomplete && len(buf) > maxHead || err == nil && next > maxHead {
			return 0, ErrResponseHeadTooLarge
		}
		if err != nil {
			return 0, err
		}
		if len(line) == 0 {
			break
		}
		f, err := parseField(line)
		if err != nil {
			return 0, err
		}
		if lim.MaxFields > 0 && len(resp.Fields) >= lim.MaxFields {
			return 0, ErrTooManyRespFields
		}
		resp.Fields = append(resp.Fields, f)
		if err := h.note(resp, f); err != nil {
			return 0, err
		}
	}
	if err := h.finish(resp, head); err != nil {
		return 0, err
	}
	return next, nil
}

// parseStatusLine reads HTTP-version SP status-code [SP reason-phrase].
// The space before an empty reason may be missing, as net/http and most
// clients allow.
func parseStatusLine(line []byte, resp *Response) error {
	if len(line) < 12 || line[8] != ' ' {
		return ErrStatusLine
	}
	switch string(line[:8]) {
	case "HTTP/1.1":
		resp.Minor = 1
	case "HTTP/1.0":
		resp.Minor = 0
	default:
		return ErrStatusLine
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return ErrStatusLine
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || code > 599 {
		return ErrStatusLine
	}
	resp.Status = code
	rest := line[12:]
	if len(rest) == 0 {
		return nil
	}
	if rest[0] != ' ' {
		return ErrStatusLine
	}
	for _, c := range rest[1:] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return ErrStatusLine
		}
	}
	resp.Reason = rest[1:]
	return nil
}

// respFieldState collects what a response head's fields say.
type respFieldState struct {
	framing
}

func (h *respFieldState) note(resp *Response, f Field) error {
	if ok, err := h.framing.note(f); ok {
		return err
	}
	switch {
	case equalFold(f.Name, "Keep-Alive"):
		if resp.KeepAliveMax < 0 {
			resp.KeepAliveMax = keepAliveMax(f.Value)
		}
	case equalFold(f.Name, "Trailer"):
		resp.Trailer = true
	}
	return nil
}

func (h *respFieldState) finish(resp *Response, head bool) error {
	closes, err := h.check(resp.Minor)
	if err != nil {
		return err
	}
	resp.Close = closes
	if h.cl {
		resp.ContentLength = h.length
	}
	switch {
	case head || resp.Status < 200 || resp.Status == 204 || resp.Status == 304:
		resp.Framing = NoBody
	case h.te:
		resp.Framing = Chunked
	case h.cl:
		resp.Framing = Length
	default:
		resp.Framing, resp.Close = UntilClose, true
	}
	return nil
}

// keepAliveMax reads the max parameter of a Keep-Alive value
// ("timeout=20, max=99"), or -1 when it has none or not a number.
func keepAliveMax(v []byte) int {
	n := -1
	eachToken(v, func(t []byte) {
		name, value, ok := bytes.Cut(t, []byte("="))
		if !ok || n >= 0 || !equalFold(trimOWS(name), "max") {
			return
		}
		value = trimOWS(value)
		if len(value) == 0 || len(value) > 9 {
			return
		}
		m := 0
		for _, c := range value {
			if c < '0' || c > '9' {
				return
			}
			m = m*10 + int(c-'0')
		}
		n = m
	})
	return n
}
