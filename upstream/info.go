package upstream

import (
	"net/http"
	"net/textproto"
	"time"

	"github.com/sluice-gw/sluice/h2c/client"
)

// RequestInfo is what the backend reports about a request for access logs,
// filled in by Backend.RoundTripInfo. Written by the request's own
// goroutine, read after RoundTripInfo returns.
type RequestInfo struct {
	Server   string // address of the server that answered (last attempt)
	Protocol string // "h2c" or "h1"
	ConnID   uint64 // upstream connection, unique in the process
	// ConnReq numbers the request on that connection, 1 for its first.
	// net/http does not expose HTTP/2 stream ids; on an h2c connection
	// request N is normally stream 2N-1.
	ConnReq   uint64
	QueueWait time.Duration // time spent waiting for a connection slot
	Attempts  int           // 1, plus retries

	// Got1xx, if the caller sets it, gets the informational responses
	// (100, 103) that come before the final one, as a Got1xxResponse hook
	// in the request context's httptrace.ClientTrace would, without a
	// context per request; it takes the place of such a hook, and of
	// every other: a caller that sets it has the request context's
	// ClientTrace ignored. Not for protocol switches (upgrades): those
	// take the context's hooks only.
	Got1xx func(code int, header textproto.MIMEHeader) error

	// Header, if the caller sets it, is the request's header, sent in
	// place of the request's Header (which is not read): to an h2c server
	// as the list it is, with no map; to an HTTP/1.1 one as its Map,
	// written in the list's order.
	Header *HeaderList

	// ListResponse, if the caller sets it with Header, asks for the
	// response's header as a list when an h2c server answers: the
	// response's Header is nil then, and ResponseFields holds the fields
	// (canonical names, in the order received; see the h2c client's
	// RoundTripList). An HTTP/1.1 server's answer comes with its Header
	// map, and ResponseFields nil.
	ListResponse   bool
	ResponseFields [][2]string
}

// Field is one request header name, canonical as an http.Header key,
// with its values.
type Field = client.Field

var _ fieldsConn = (*client.Conn)(nil)

// HeaderList is a request header as a list of fields, in the order they
// are sent. Its map form is built only when a connection needs one (an
// HTTP/1.1 server), and kept for the next attempt.
type HeaderList struct {
	Fields []Field
	m      http.Header // Fields as a map, once Map built it; cleared by Reset
	names  []string    // m's keys in Fields' order, built with m; kept for reuse
	built  bool
}

// Add appends a field.
func (l *HeaderList) Add(name string, values []string) {
	l.Fields = append(l.Fields, Field{Name: name, Values: values})
}

// Map returns the header as an http.Header, built from Fields on the first
// call after Reset. The values are Fields' own slices.
func (l *HeaderList) Map() http.Header {
	if l.built {
		return l.m
	}
	if l.m == nil {
		l.m = make(http.Header, len(l.Fields))
	}
	for _, f := range l.Fields {
		if prev, ok := l.m[f.Name]; ok {
			l.m[f.Name] = append(prev[:len(prev):len(prev)], f.Values...)
		} else {
			l.m[f.Name] = f.Values
			l.names = append(l.names, f.Name)
		}
	}
	l.built = true
	return l.m
}

// Order returns Map's keys, each once, in the order of their first field
// in Fields: the order an HTTP/1.1 server gets them in. It builds the map
// if Map has not.
func (l *HeaderList) Order() []string {
	l.Map()
	return l.names
}

// Reset empties l for reuse: nothing of the last request stays reachable.
func (l *HeaderList) Reset() {
	clear(l.Fields)
	l.Fields = l.Fields[:0]
	if l.built {
		clear(l.m)
		clear(l.names)
		l.names = l.names[:0]
		l.built = false
	}
}
