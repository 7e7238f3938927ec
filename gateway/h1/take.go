package h1

import (
	"bytes"
	"time"
)

// wholeRequest reports whether b, what an idle connection's watcher read
// at once, looks like a whole request that needs nothing more from the
// socket (takeRequest): a head ending at its first empty line, with no
// Transfer-Encoding and at most one Content-Length field, followed by
// exactly that many body bytes. It is a quick look, shallow enough for
// the watcher's small stack, not the parser: a head it passes may still
// be refused by ParseHead, which is fine (the connection closes), and
// readHead checks that the parser agrees on where the request ends
// (selfContained).
func wholeRequest(b []byte) bool {
	if len(b) == 0 || b[0] == '\r' || b[0] == '\n' {
		return false // empty lines first: the parser skips them
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return false
	}
	head := b[:end+2]
	length := int64(0)
	seen := false
	// The request line first, then a field a line.
	for i := bytes.Index(head, []byte("\r\n")) + 2; i < len(head); {
		line := head[i:]
		line = line[:bytes.Index(line, []byte("\r\n"))]
		i += len(line) + 2
		if len(line) == 0 {
			continue
		}
		switch line[0] | 0x20 {
		case 't':
			if hasPrefixFold(line, "transfer-encoding:") {
				return false
			}
		case 'c':
			if !hasPrefixFold(line, "content-length:") {
				continue
			}
			if seen {
				return false
			}
			seen = true
			v := bytes.Trim(line[len("content-length:"):], " \t")
			n, ok := ParseContentLength(v)
			if !ok {
				return false
			}
			length = n
		}
	}
	return int64(len(b)-len(head)-2) == length
}

// asksClose reports whether b, a request wholeRequest passed, asks for
// its connection to close after it, as the parser decides it (framing.check):
// a Connection field naming close, or HTTP/1.0 without one naming
// keep-alive. A quick look, as wholeRequest's, checked against the parser
// by FuzzWholeRequest: the parser decides how the connection goes on, and
// a wrong guess here would only cost the connection a registration with
// the poller (takeRequest).
func asksClose(b []byte) bool {
	end := bytes.Index(b, []byte("\r\n"))
	if end < 0 {
		return false
	}
	http10 := bytes.HasSuffix(b[:end], []byte("HTTP/1.0"))
	closes, keepAlive := false, false
	for i := end + 2; i < len(b); {
		line := b[i:]
		n := bytes.Index(line, []byte("\r\n"))
		if n <= 0 {
			break // the empty line ending the head
		}
		line = line[:n]
		i += n + 2
		if !hasPrefixFold(line, "connection:") {
			continue
		}
		eachToken(line[len("connection:"):], func(t []byte) {
			switch {
			case equalFold(t, "close"):
				closes = true
			case equalFold(t, "keep-alive"):
				keepAlive = true
			}
		})
	}
	return closes || http10 && !keepAlive
}

// hasPrefixFold reports whether b starts with the lower-case ASCII
// prefix, in any case.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && equalFold(b[:len(prefix)], prefix)
}

// selfContained reports whether the request just parsed, its head n bytes
// at buf[r:], ends where the bytes read so far do, body included: a
// request the watcher may take (wholeRequest).
func (cc *conn) selfContained(n int) bool {
	rest := int64(cc.w - cc.r - n)
	switch cc.req.Framing {
	case NoBody:
		return rest == 0
	case Length:
		return rest == cc.req.ContentLength
	}
	return false
}

// untake has the watcher that took the request (takeRequest) stop
// waiting on the socket, which the request's goroutine is to read; a
// watcher starts again as it would for any request (watch, idle).
// Nothing but a bug in wholeRequest makes this happen: it costs two
// deadline changes and a goroutine.
func (cc *conn) untake() {
	cc.watchMu.Lock()
	if cc.watching != watchRequest {
		// It saw the client leave, or more bytes, and left the wait.
		cc.watchMu.Unlock()
		return
	}
	cc.watching = watchStopping
	stopped := make(chan struct{})
	cc.stopped = stopped
	cc.idleBy = time.Time{}
	cc.watchMu.Unlock()
	cc.c.SetReadDeadline(aLongTimeAgo)
	<-stopped
	cc.c.SetReadDeadline(time.Time{})
	cc.watchMu.Lock()
	cc.watching = watchNone
	cc.watchMu.Unlock()
}
