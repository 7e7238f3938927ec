// Package client is Sluice's own HTTP/2 client connection: it owns one
// upstream h2c (prior knowledge) connection, from the preface and the wait
// for the server's first SETTINGS to GOAWAY and Close.
//
// Who owns what:
//   - The socket's read side belongs to one reader goroutine per
//     connection (readLoop). It dispatches every frame to a table of
//     streams and never blocks on a stream's consumer: a stream's DATA
//     goes into that stream's buffer, bounded by the receive window the
//     client gave it, so a slow consumer stalls only its own stream.
//   - The socket's write side belongs to the write coalescer
//     (h2c.Coalesce): frames are serialised under Conn.wmu into it, and
//     it sends the frames of many streams in one syscall.
//   - A request is driven by its caller's goroutine: RoundTrip writes the
//     HEADERS, waits for the response headers and returns; the caller
//     reads the body from the stream's buffer. There is no goroutine per
//     stream, except one writing a request body that is larger than the
//     send window or of unknown length, for as long as it is written.
//
// The API mirrors what upstream's pool uses of net/http's ClientConn
// (RoundTrip, Reserve, Release, Available, InFlight, Err, Close,
// SetStateHook), so that the pool can swap one for the other.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gw/sluice/h2c"
	"github.com/sluice-gw/sluice/h2c/hpack"
	"github.com/sluice-gw/sluice/upstream/sockio"
	"golang.org/x/net/http2"
)

// Config tunes one connection. Zero values pick defaults.
type Config struct {
	// KeepAlive is the TCP keep-alive period used by Dial. Zero means 30s.
	KeepAlive time.Duration
	// PingInterval sends a PING after this long without a frame from the
	// server. Zero sends none. Tomcat counts each PING it receives towards
	// its overhead protection (+overheadCountFactor, default 10, against a
	// budget of -100 that only HEADERS and DATA frames replenish), so on an
	// idle connection with Tomcat's defaults about ten pings in a row end
	// in GOAWAY; 30s keeps that beyond Tomcat's own 20s idle close.
	PingInterval time.Duration
	// PingTimeout closes the connection when a PING goes unanswered this
	// long. Zero means 5s.
	PingTimeout time.Duration
	// WriteTimeout bounds each write into the socket, frames queued in
	// the coalescer included. Zero means 30s.
	WriteTimeout time.Duration
	// MaxHeaderListSize bounds a response's decoded header list (and its
	// trailers): larger ones reset the stream, and a header block far
	// beyond it (a CONTINUATION flood) ends the connection. Zero means
	// 1 MiB.
	MaxHeaderListSize uint32
	// ConnWindow is the connection's receive window. It is returned to
	// the server as DATA arrives, since each stream's buffer is bounded
	// by its own window. Zero means 4 MiB.
	ConnWindow int32
	// StreamWindow is each stream's receive window, which bounds the
	// bytes buffered for a consumer that does not read. Zero means 1 MiB.
	StreamWindow int32
	// ExpectContinueTimeout is how long a request with "Expect:
	// 100-continue" waits for the 100 before sending its body anyway.
	// Zero means 1s.
	ExpectContinueTimeout time.Duration
	// OnGoAway, if set, is called from the reader goroutine when the
	// server sends GOAWAY, before the connection acts on it. It must not
	// block.
	OnGoAway func(GoAway)
	// OnWindowLeak, if set, is called once, from a goroutine of the
	// connection's, when the server has kept over half the connection
	// send window it granted for request bodies of streams that have
	// ended, and still keeps it once a PING has made the round trip, or
	// windowLeakGrace later without an ACK (see WindowLeak).
	// From the suspicion on, the connection takes no new streams
	// (Available is 0): bodies sent on it could wait for credit that
	// never comes. It is back in service if the server returns the
	// credit by then; after OnWindowLeak it never is, and the
	// caller should close it once its streams are done. It must not
	// block.
	OnWindowLeak func(WindowLeak)
	// MaxBodyStreams caps the streams open at once that carry a request
	// body held whole in memory (HeldBody), from a client that sends
	// nothing else meanwhile (SoleBody), or of known length up to
	// MaxCappedBody; more wait for one to end, holding their slot. Zero
	// means no cap. Tomcat gives each stream with a body two buffers of
	// its initialWindowSize until the stream ends, whatever the body's
	// size, and a servlet reading a body holds one of its threads while
	// it waits for the bytes, which the connection window may be full of
	// for streams still queued for a thread: the cap bounds both.
	// Other bodies are not capped: their callers stream them from HTTP/2
	// or HTTP/3 clients, and a wait would hold flow-control credit those
	// clients' other streams may need.
	MaxBodyStreams int
}

// MaxCappedBody is the largest request body of known length that
// MaxBodyStreams counts when it is not a HeldBody: up to it, upstream's
// retry buffer has read it whole by default.
const MaxCappedBody = 64 << 10

// HeldBody is a request body read whole into memory before the request
// was sent (upstream's retry buffer). A stream waiting for a
// MaxBodyStreams token with one holds no client's flow-control credit,
// so it is capped whatever its length.
type HeldBody interface {
	HeldWhole()
}

// SoleBody is a request body whose client sends nothing else while the
// request waits (Sole true: an HTTP/1.1 client, one request at a time on
// a connection of its own). A stream waiting for a MaxBodyStreams token
// with one holds back no other request's bytes, only its own client's,
// so it is capped whatever its length. An HTTP/2 client's body is not
// sole: bytes of it left unread hold connection credit the client's
// other streams may need.
type SoleBody interface {
	Sole() bool
}

// capsBody reports whether a request body of length cl (outgoingLength)
// takes a MaxBodyStreams token.
func capsBody(body io.Reader, cl int64) bool {
	switch b := body.(type) {
	case nil:
		return false
	case HeldBody:
		return cl != 0
	case SoleBody:
		if cl != 0 && b.Sole() {
			return true
		}
	}
	return cl > 0 && cl <= MaxCappedBody
}

// WindowLeak describes a connection whose server kept the send credit
// of ended streams. HTTP/2 counts every DATA byte against the connection
// window until the server returns it with WINDOW_UPDATE; a server that
// never does for a stream it has finished shrinks the window for good.
// Tomcat 10.1 does this for a request body that arrived whole before its
// servlet finished without reading it.
type WindowLeak struct {
	// Leaked is the credit the server keeps beyond what the streams
	// still open were sent; Granted the largest send window it granted;
	// Window what is left.
	Leaked  int64
	Granted int32
	Window  int32
}

// windowLeakGrace is how long a suspected leak waits for the ACK of its
// PING (window.go) before it is confirmed without one.
const windowLeakGrace = time.Second

func (cfg *Config) setDefaults() {
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = 5 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.MaxHeaderListSize == 0 {
		cfg.MaxHeaderListSize = 1 << 20
	}
	if cfg.ConnWindow == 0 {
		cfg.ConnWindow = 4 << 20
	}
	if cfg.StreamWindow == 0 {
		cfg.StreamWindow = 1 << 20
	}
	if cfg.ExpectContinueTimeout == 0 {
		cfg.ExpectContinueTimeout = time.Second
	}
}

const (
	// initialWindow is HTTP/2's window before SETTINGS say otherwise.
	initialWindow = 65535
	// unlimitedStreams is assumed when the server sets no
	// MAX_CONCURRENT_STREAMS, as x/net's client does.
	unlimitedStreams = 1000
	// readBufSize is the connection's read buffer.
	readBufSize = 16 << 10
	// maxFrame is the largest frame the client accepts (the default; it
	// advertises no other).
	maxFrame = 16 << 10
)

// Conn is one HTTP/2 client connection. Its methods are safe for
// concurrent use.
type Conn struct {
	cfg Config
	nc  net.Conn // the coalesced socket
	fr  *http2.Framer

	// wmu serialises frame writes: it guards the framer's write side,
	// hbuf and tableZeroed. Lock order: wmu before mu; never take wmu
	// while holding mu.
	wmu         sync.Mutex
	hbuf        headerBuf
	tableZeroed bool // a header block has set the server's HPACK table size to 0

	// mu guards the fields below and the state of every stream (see
	// stream). It is never held across I/O or a callback.
	mu         sync.Mutex
	cond       sync.Cond // on mu: send window, slots or state changed
	streams    map[uint32]*stream
	nextID     uint32 // the next stream's id
	maxStreams uint32 // the server's MAX_CONCURRENT_STREAMS
	reserved   int    // slots taken by Reserve, not yet used by RoundTrip
	active     int    // streams opened and not yet ended by their caller
	bodies     int    // streams holding a MaxBodyStreams token
	sendWin    outflow
	// sendHigh is the largest the send window has been, what the server
	// granted; openSent the DATA bytes sent on the streams in the table.
	// The server keeps sendHigh-sendWin-openSent or more for streams that
	// have ended (window.go).
	sendHigh   int32
	openSent   int64
	leakTimer  *time.Timer // confirms a suspected leak; nil when none is
	leakSeen   bool        // OnWindowLeak was called
	peerWin    int32       // the server's INITIAL_WINDOW_SIZE
	peerFrame  uint32      // the server's MAX_FRAME_SIZE
	peerHdrMax uint32      // the server's MAX_HEADER_LIST_SIZE, 0: no limit
	goAway     *GoAway
	err        error // set once: why the connection cannot take streams
	hook       func(*Conn)
	hookBusy   bool // a hook call runs
	hookAgain  bool // state changed while it ran
	pingOut    bool // a PING of ours awaits its ACK
	pingData   [8]byte
	pingSent   time.Time     // when the PING awaiting its ACK was sent
	pingRTT    time.Duration // the last acknowledged PING's round trip
	pingAckAt  time.Time     // when that ACK arrived; zero before any
	requests   uint64
	// wakes are streams' wake channels to reuse (stream.go: finishWaits),
	// at most maxSpareWakes. Kept per connection rather than in a
	// sync.Pool, so a channel never leaves its connection's synctest
	// bubble in tests.
	wakes []chan struct{}

	// Reader-goroutine-only state.
	recv     inflow        // the connection's receive window
	br       *bufio.Reader // the socket's read side, which the framer reads too
	hpay     []byte        // the payload of the HEADERS or CONTINUATION frame being read
	hdec     *hpack.Decoder
	hb       headerBlock
	lastRead atomic.Int64
	// later is a stream whose wake-up waits for its next frame, already
	// read (signalLater).
	later *stream
	// readerSignals counts the wake-ups the reader sent to streams'
	// callers for HEADERS and DATA (the tests count them).
	readerSignals atomic.Uint64

	settings chan struct{} // closed when the server's first SETTINGS are applied
	done     chan struct{} // closed when running drops to 0
	running  int           // goroutines of the connection; guarded by mu
	timer    *time.Timer   // PING interval and timeout; guarded by mu
}

// goLocked starts f in a goroutine owned by the connection, unless every
// goroutine has already ended (then it returns false and f does not run).
func (c *Conn) goLocked(f func()) bool {
	if c.running == 0 {
		return false
	}
	c.running++
	go func() {
		defer c.exit()
		f()
	}()
	return true
}

// exit ends one goroutine of the connection; the last closes done.
func (c *Conn) exit() {
	c.mu.Lock()
	c.running--
	if c.running == 0 {
		close(c.done)
	}
	c.mu.Unlock()
}

// Dial opens a TCP connection to addr and returns the client connection
// once the server's SETTINGS are in force (see NewConn). ctx bounds the
// connect and the wait for SETTINGS.
func Dial(ctx context.Context, addr string, cfg Config) (*Conn, error) {
	cfg.setDefaults()
	d := net.Dialer{KeepAlive: cfg.KeepAlive}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return NewConn(ctx, nc, cfg)
}

// NewConn speaks HTTP/2 over nc: it sends the preface and its SETTINGS,
// starts the reader goroutine and waits for the server's first SETTINGS.
// Until then it does not know how many streams the server allows, so the
// connection is not returned earlier. It fails at once when the server
// closes or resets the connection, and with ErrNoSettings when ctx ends
// first. nc is closed on failure. The writes go through h2c.Coalesce.
func NewConn(ctx context.Context, nc net.Conn, cfg Config) (*Conn, error) {
	cfg.setDefaults()
	// Every write is bounded by WriteTimeout without a deadline set per
	// frame (h2c.CoalesceTimeout).
	cnc := h2c.CoalesceTimeout(nc, cfg.WriteTimeout)
	c := &Conn{
		cfg:        cfg,
		nc:         cnc,
		streams:    make(map[uint32]*stream),
		nextID:     1,
		maxStreams: unlimitedStreams,
		sendWin:    outflow{initialWindow},
		sendHigh:   initialWindow,
		peerWin:    initialWindow,
		peerFrame:  maxFrame,
		recv:       newInflow(cfg.ConnWindow),
		settings:   make(chan struct{}),
		done:       make(chan struct{}),
	}
	c.cond.L = &c.mu
	// Reads are buffered: the framer reads a frame header and then its
	// payload, and one syscall should bring many frames.
	c.br = bufio.NewReaderSize(sockio.Reader(nc), readBufSize)
	c.fr = http2.NewFramer(cnc, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(maxFrame)
	// The client advertises no SETTINGS_HEADER_TABLE_SIZE: the
	// server's encoder may use the default 4096 bytes.
	c.hdec = hpack.NewDecoder(4096, int(cfg.MaxHeaderListSize))

	c.wmu.Lock()
	_, err := cnc.Write([]byte(http2.ClientPreface))
	if err == nil {
		err = c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(cfg.StreamWindow)},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: cfg.MaxHeaderListSize},
		)
	}
	if err == nil && cfg.ConnWindow > initialWindow {
		err = c.fr.WriteWindowUpdate(0, uint32(cfg.ConnWindow-initialWindow))
	}
	c.wmu.Unlock()
	if err != nil {
		cnc.Close()
		return nil, fmt.Errorf("%w: writing preface: %w", ErrNoSettings, err)
	}
	c.lastRead.Store(time.Now().UnixNano())
	c.running = 1
	go c.readLoop()

	select {
	case <-c.settings:
	case <-c.done:
		return nil, fmt.Errorf("%w: %w", ErrNoSettings, c.Err())
	case <-ctx.Done():
		c.closeWith(ErrNoSettings)
		<-c.done
		return nil, fmt.Errorf("%w: %w", ErrNoSettings, context.Cause(ctx))
	}
	if cfg.PingInterval > 0 {
		c.mu.Lock()
		if c.err == nil {
			c.timer = time.AfterFunc(cfg.PingInterval, c.pingTick)
		}
		c.mu.Unlock()
	}
	return c, nil
}

// Done is closed once the reader goroutine has ended, after Close or a
// connection failure, and every goroutine of the connection with it.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Close closes the connection. Outstanding requests fail. It does not
// wait for the reader goroutine (see Done), so it may be called from the
// state hook and the GOAWAY callback.
func (c *Conn) Close() error {
	c.closeWith(ErrClosed)
	return nil
}

// closeWith fails the connection with err (the first error sticks),
// closes the socket and wakes every waiter.
func (c *Conn) closeWith(err error) {
	c.mu.Lock()
	first := c.err == nil
	if first {
		c.err = err
	}
	var bodies []io.Closer
	for _, s := range c.streams {
		s.failLocked(c.err)
		if s.writing {
			bodies = append(bodies, s.req.Body)
		}
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.leakTimer != nil {
		c.leakTimer.Stop()
		c.leakTimer = nil
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	// Request bodies are closed so that writers blocked in their Read
	// end with the connection.
	for _, b := range bodies {
		b.Close()
	}
	if first {
		c.nc.Close()
		c.stateChanged(true)
	}
}

// Err reports why the connection can take no more requests: closed,
// failed, or going away after GOAWAY. It is nil while the connection is
// usable.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errLocked()
}

func (c *Conn) errLocked() error {
	if c.err != nil {
		return c.err
	}
	if c.goAway != nil {
		return &GoAwayError{GoAway: *c.goAway}
	}
	return nil
}

// Available reports how many requests may be sent without waiting; 0
// when the connection is closed or going away.
func (c *Conn) Available() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.availableLocked()
}

func (c *Conn) availableLocked() int {
	if c.errLocked() != nil || c.leakTimer != nil || c.leakSeen {
		// A suspected window leak (window.go) takes no new streams:
		// their bodies could wait for credit that never comes.
		return 0
	}
	return max(0, int(c.maxStreams)-c.reserved-c.active)
}

// Slots reports under one lock what InFlight, Available and Err report
// one lock each, for a pool choosing among its connections.
func (c *Conn) Slots() (inFlight, available int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reserved + c.active, c.availableLocked(), c.errLocked()
}

// InFlight reports the requests in flight, reserved slots included.
func (c *Conn) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reserved + c.active
}

// Reserve takes a slot for one later RoundTrip, or fails with ErrNoSlot
// when none is free. Each successful Reserve is followed by exactly one
// RoundTrip or Release.
func (c *Conn) Reserve() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.availableLocked() == 0 {
		if err := c.errLocked(); err != nil {
			return fmt.Errorf("%w: %w", ErrNoSlot, err)
		}
		return ErrNoSlot
	}
	c.reserved++
	return nil
}

// Release gives back a slot taken by Reserve and not used.
func (c *Conn) Release() {
	c.mu.Lock()
	if c.reserved == 0 {
		c.mu.Unlock()
		return
	}
	c.reserved--
	c.cond.Broadcast()
	c.mu.Unlock()
	c.stateChanged(false)
}

// SetStateHook arranges for f to be called when the connection's state
// changes: a stream ended, a slot was released, the server changed its
// stream limit, GOAWAY, or the connection's end. At most one call runs at
// a time. f may be called synchronously from RoundTrip, Release and a
// response body's Read or Close, and otherwise from a goroutine of the
// connection (never from the reader itself, so f may call Close).
func (c *Conn) SetStateHook(f func(*Conn)) {
	c.mu.Lock()
	c.hook = f
	c.mu.Unlock()
	c.stateChanged(true)
}

// stateChanged runs the hook, in this goroutine, or in a new one when
// async (the caller is the reader, or holds something the hook might
// need). Calls during a running hook are folded into one more run.
func (c *Conn) stateChanged(async bool) {
	c.mu.Lock()
	if c.hook == nil {
		c.mu.Unlock()
		return
	}
	if c.hookBusy {
		c.hookAgain = true
		c.mu.Unlock()
		return
	}
	c.hookBusy = true
	if async && c.goLocked(c.runHook) {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.runHook()
}

func (c *Conn) runHook() {
	for {
		c.mu.Lock()
		f := c.hook
		c.hookAgain = false
		c.mu.Unlock()
		f(c)
		c.mu.Lock()
		if !c.hookAgain {
			c.hookBusy = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// pingTick runs from the PING timer: it sends a PING when nothing was
// read for PingInterval, and closes the connection when the PING sent
// earlier is still unanswered.
func (c *Conn) pingTick() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if c.pingOut {
		c.mu.Unlock()
		c.closeWith(&ConnError{Reason: "PING unanswered", Err: errPingTimeout})
		return
	}
	idle := time.Since(time.Unix(0, c.lastRead.Load()))
	if idle < c.cfg.PingInterval {
		c.timer.Reset(c.cfg.PingInterval - idle)
		c.mu.Unlock()
		return
	}
	c.pingOut = true
	c.pingData[0]++
	c.pingSent = time.Now()
	data := c.pingData
	c.timer.Reset(c.cfg.PingTimeout)
	c.mu.Unlock()
	c.writeFrame(func() error { return c.fr.WritePing(false, data) })
}

var errPingTimeout = errors.New("ping timeout")

// PingRTT is the round trip of the last liveness PING acknowledged, and
// when its ACK arrived; zero before any. Only idle connections are pinged
// (PingInterval), so under load it stays at the last idle moment's.
func (c *Conn) PingRTT() (time.Duration, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pingRTT, c.pingAckAt
}

// pingAcked runs on the reader when a PING ACK arrives.
func (c *Conn) pingAcked(data [8]byte) {
	c.mu.Lock()
	if c.pingOut && data == c.pingData {
		c.pingOut = false
		c.pingAckAt = time.Now()
		c.pingRTT = c.pingAckAt.Sub(c.pingSent)
		if c.timer != nil && c.err == nil {
			c.timer.Reset(c.cfg.PingInterval)
		}
	}
	c.mu.Unlock()
}

// writeFrame writes one frame under wmu (bounded by the write timeout,
// h2c.CoalesceTimeout); a failed write fails the connection.
func (c *Conn) writeFrame(write func() error) error {
	c.wmu.Lock()
	err := write()
	c.wmu.Unlock()
	if err != nil {
		c.closeWith(&ConnError{Reason: "write", Err: err})
	}
	return err
}

// Requests reports how many streams the connection has opened.
func (c *Conn) Requests() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

var _ http.RoundTripper = (*Conn)(nil)
