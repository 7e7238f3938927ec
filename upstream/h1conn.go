package upstream

import (
	"net/http"
	"time"

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
	return h.RoundTripOrder(req, nil)
}

// RoundTripOrder is RoundTrip writing req's fields in order (see
// h1client.Conn.RoundTripOrder).
func (h *h1Conn) RoundTripOrder(req *http.Request, order []string) (*http.Response, error) {
	resp, err := h.Conn.RoundTripOrder(req, order)
	if err == nil && h1compat.KeepAliveSpent(resp) {
		h.c.keepAliveSpent()
	}
	return resp, err
}

// giveBack returns a slot handed to a request of st whose client has left
// (req: the request, nil if it has a body). A slot whose connection carries
// req already (presend) is not released, which would close the
// connection and cost the server a new one: its answer is read and
// dropped, as that of any request whose client leaves while it runs
// (within abortGrace and drainLimit), and the connection stays in the pool.
func (b *Backend) giveBack(c *pconn, req *http.Request, st *backendState) {
	h, ok := c.cc.(*h1Conn)
	if !ok || req == nil || !h.Presended() {
		c.release()
		return
	}
	c.reqs.Add(1)
	if resp, _, err := b.send(req, nil, st, c, time.Time{}, nil); err == nil {
		resp.Body.Close()
	}
}
