package gateway

// Protocol switches (WebSocket, RFC 9110 section 7.8). The request goes to
// the backend like any other, with its Upgrade header; the backend answers
// it on an upstream HTTP/1.1 connection of its own and hands that
// connection over as the body of a 101. The client connection is then
// hijacked and the two are spliced until either side closes, or neither
// sends a byte for the idle timeout, or shutdown cuts them.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

var valUpgrade = []string{"Upgrade"}

// upgrade proxies r, which asks to switch to protocol up.
func (p *proxy) upgrade(w *statusWriter, r *http.Request, ex *exchange, up string) {
	out := p.outRequest(w, r, ex)
	if out.Body != nil {
		defer ex.body.Close()
	}
	// A tunnel takes its header as a map, the upgrade's fields added.
	out.Header, ex.info.Header = ex.hdr.Map(), nil
	out.Header["Connection"] = valUpgrade
	out.Header["Upgrade"] = []string{up}
	res, err := p.roundTrip(w, out, ex)
	if err != nil {
		p.fail(w, out, err)
		return
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		// Refused (a 403 for a foreign Origin, a 404): an ordinary answer.
		p.copyResponse(w, r, res, ex)
		return
	}
	backConn, err := switched(up, res)
	if err != nil {
		// The body holds the upstream connection and its slot: close it,
		// which ReverseProxy did not do.
		res.Body.Close()
		p.fail(w, out, err)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		backConn.Close()
		p.fail(w, out, fmt.Errorf("gateway: protocol switch: %w", err))
		return
	}
	w.code = http.StatusSwitchingProtocols
	h := w.Header()
	for k, vv := range res.Header {
		if hopByHop(k) {
			continue
		}
		addValues(h, k, vv)
	}
	h["Connection"] = valUpgrade
	h["Upgrade"] = res.Header["Upgrade"]
	// One write, so that the request smuggling guard (sanitize.go) sees
	// the 101 and lets the new protocol through.
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	h.Write(brw)
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		conn.Close()
		backConn.Close()
		p.log.Debug("protocol switch: client gone", "backend", p.name, "path", r.URL.Path, "err", err)
		return
	}
	p.tun.splice(conn, brw.Reader, backConn)
}

// switched checks that res switches to the protocol asked for, and returns
// the upstream connection.
func switched(up string, res *http.Response) (io.ReadWriteCloser, error) {
	got := res.Header.Get("Upgrade")
	if !httpguts.ValidHeaderFieldValue(got) || !strings.EqualFold(got, up) {
		return nil, fmt.Errorf("gateway: backend switched to protocol %q when %q was asked for", got, up)
	}
	rwc, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		return nil, errors.New("gateway: 101 Switching Protocols without a writable connection")
	}
	return rwc, nil
}

// tunnels tracks the gateway's spliced connections so that shutdown can
// wait for them and then cut them.
type tunnels struct {
	idle time.Duration // no byte either way for this long closes a tunnel

	mu     sync.Mutex // guards set and closed
	set    map[*tunnel]struct{}
	closed bool          // Close ran: new tunnels are cut at once
	empty  chan struct{} // closed when set empties; nil when nobody waits
}

// tunnel is one spliced pair of connections.
type tunnel struct {
	client net.Conn
	back   io.ReadWriteCloser
	idle   time.Duration
	last   atomic.Int64 // UnixNano of the last byte read either way
	timer  *time.Timer
	once   sync.Once
}

func (t *tunnel) close() {
	t.once.Do(func() {
		t.timer.Stop()
		t.client.Close()
		t.back.Close()
	})
}

// checkIdle runs when the idle timer fires: it closes the tunnel if no
// byte moved since, or waits for the rest of the period.
func (t *tunnel) checkIdle() {
	if rest := time.Until(time.Unix(0, t.last.Load()).Add(t.idle)); rest > 0 {
		t.timer.Reset(rest)
		return
	}
	t.close()
}

// splice copies between client (whose reader br may hold bytes already
// read) and back until either ends, then closes both.
func (ts *tunnels) splice(client net.Conn, br *bufio.Reader, back io.ReadWriteCloser) {
	t := &tunnel{client: client, back: back, idle: ts.idle}
	t.last.Store(time.Now().UnixNano())
	t.timer = time.AfterFunc(t.idle, t.checkIdle)
	defer t.close()
	if !ts.add(t) {
		return
	}
	defer ts.remove(t)
	// Clear the deadlines net/http set for the request.
	client.SetDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.copy(client, back)
		t.close()
	}()
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if _, err := back.Write(b); err != nil {
			t.close()
		}
	}
	t.copy(back, client)
	t.close()
	<-done
}

// copy copies src to dst until either fails, noting each read as
// activity.
func (t *tunnel) copy(dst io.Writer, src io.Reader) {
	c, _ := dst.(net.Conn)
	copyPooled(src, func(p []byte) error {
		now := time.Now()
		t.last.Store(now.UnixNano())
		if c != nil {
			// A client that stops reading cannot hold the tunnel.
			c.SetWriteDeadline(now.Add(t.idle))
		}
		_, err := dst.Write(p)
		return err
	})
}

func (ts *tunnels) add(t *tunnel) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	if ts.set == nil {
		ts.set = map[*tunnel]struct{}{}
	}
	ts.set[t] = struct{}{}
	return true
}

func (ts *tunnels) remove(t *tunnel) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.set, t)
	if len(ts.set) == 0 && ts.empty != nil {
		close(ts.empty)
		ts.empty = nil
	}
}

// Tunnels is the number of spliced protocol-switch connections open.
func (g *Gateway) Tunnels() int {
	g.tunnels.mu.Lock()
	defer g.tunnels.mu.Unlock()
	return len(g.tunnels.set)
}

// CloseTunnels waits for the spliced connections of protocol switches
// (WebSocket) to end, which http.Server.Shutdown does not track, until ctx
// is done; then it closes those left. Tunnels opened afterwards are closed
// at once. It returns ctx's error if it had to cut any.
func (g *Gateway) CloseTunnels(ctx context.Context) error {
	ts := &g.tunnels
	ts.mu.Lock()
	if len(ts.set) == 0 {
		ts.closed = true
		ts.mu.Unlock()
		return nil
	}
	if ts.empty == nil {
		ts.empty = make(chan struct{})
	}
	empty := ts.empty
	ts.mu.Unlock()
	select {
	case <-empty:
		ts.mu.Lock()
		ts.closed = true
		ts.mu.Unlock()
		return nil
	case <-ctx.Done():
	}
	ts.mu.Lock()
	ts.closed = true
	left := make([]*tunnel, 0, len(ts.set))
	for t := range ts.set {
		left = append(left, t)
	}
	ts.mu.Unlock()
	for _, t := range left {
		t.close()
	}
	return fmt.Errorf("gateway: %d tunnels cut: %w", len(left), context.Cause(ctx))
}
