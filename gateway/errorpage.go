package gateway

import (
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrorPage is a custom body for a status Sluice answers itself: no route
// (404), queue full or timed out (503), upstream unreachable (502) or too
// slow (504). Responses from Tomcat are never replaced, whatever their
// status: they are the application's own answer.
type ErrorPage struct {
	Body []byte
	// ContentType is sent as is; empty means sniffed from Body.
	ContentType string
}

// NewErrorPage makes the page for a file's content, taking the
// Content-Type from the file name's extension. Unknown extensions are
// sniffed, so an extension-less file of HTML is still served as HTML.
func NewErrorPage(name string, body []byte) ErrorPage {
	var ct string
	switch strings.ToLower(filepath.Ext(name)) {
	case ".html", ".htm":
		ct = "text/html; charset=utf-8"
	case ".json":
		ct = "application/json"
	case ".txt", ".text":
		ct = "text/plain; charset=utf-8"
	default:
		ct = http.DetectContentType(body)
	}
	return ErrorPage{Body: body, ContentType: ct}
}

// writeError sends an error Sluice generates itself: the page configured
// for code, or text, a short plain-text line saying what happened.
func writeError(w http.ResponseWriter, pages map[int]ErrorPage, code int, text string) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if code == http.StatusServiceUnavailable {
		// Queue full or timed out is load, not breakage: tell well-behaved
		// clients to come back soon rather than give up.
		h.Set("Retry-After", "1")
	}
	page, ok := pages[code]
	if !ok {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Del("Content-Length")
		w.WriteHeader(code)
		io.WriteString(w, text)
		return
	}
	ct := page.ContentType
	if ct == "" {
		ct = http.DetectContentType(page.Body)
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(page.Body)))
	w.WriteHeader(code)
	w.Write(page.Body)
}
