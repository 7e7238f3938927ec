package upstream

import (
	"net/http"

	"github.com/sluice-gw/sluice/h1compat"
	h1client "github.com/sluice-gw/sluice/h1compat/client"
)

// h1Conn is a pooled HTTP/1.1 connection that retires itself when a
// response ends its keep-alive, so the pool dials the replacement while
// that response's body is still being read.
type h1Conn struct {
	*h1client.Conn
	c *pconn
}

func (h *h1Conn) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.Conn.RoundTrip(req)
	if err == nil && h1compat.KeepAliveSpent(resp) {
		h.c.keepAliveSpent()
	}
	return resp, err
}
