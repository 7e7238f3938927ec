package gateway

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrProxyHeader reports a connection without a valid PROXY protocol header
// on a listener that requires one.
var ErrProxyHeader = errors.New("proxy protocol: invalid header")

// errProxyFromMissing refuses a PROXY protocol listener that would believe
// any peer.
var errProxyFromMissing = errors.New("proxy protocol needs the networks whose headers are honoured (ProxyFrom)")

// proxyListener requires a PROXY protocol (v1 or v2) header on every
// connection, so Sluice behind an L4 load balancer still sees client
// addresses. The header is read on the connection's own goroutine (first
// Read or RemoteAddr), never in Accept, so a slow client cannot stall the
// accept loop.
type proxyListener struct {
	net.Listener
	// timeout bounds reading the header.
	timeout time.Duration
	// from are the peers whose header is honoured; a connection from any
	// other is closed at accept, before a byte is read.
	from []netip.Prefix
	// rejected is called once per connection closed for a bad header.
	rejected func()
	// untrusted is called once per connection closed for its peer.
	untrusted func()
}

func (l *proxyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.trusts(c.RemoteAddr()) {
			// Counted before the close, so that a peer which sees the
			// close also sees the count (the test reads it then).
			if l.untrusted != nil {
				l.untrusted()
			}
			c.Close()
			continue
		}
		return &proxyConn{Conn: c, l: l}, nil
	}
}

// trusts reports whether a PROXY header from peer is honoured.
func (l *proxyListener) trusts(peer net.Addr) bool {
	ta, ok := peer.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := ta.AddrPort().Addr().Unmap().WithZone("")
	for _, p := range l.from {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// proxyConn parses the header before the first byte of payload.
type proxyConn struct {
	net.Conn
	l    *proxyListener
	once sync.Once
	br   *bufio.Reader
	src  net.Addr
	err  error
}

func (c *proxyConn) init() {
	c.once.Do(func() {
		c.Conn.SetReadDeadline(time.Now().Add(c.l.timeout))
		c.br = bufio.NewReaderSize(c.Conn, 256)
		c.src, c.err = readProxyHeader(c.br)
		c.Conn.SetReadDeadline(time.Time{})
		if c.err != nil {
			if c.l.rejected != nil {
				c.l.rejected()
			}
			c.Conn.Close()
		}
	})
}

func (c *proxyConn) Read(p []byte) (int, error) {
	c.init()
	if c.err != nil {
		return 0, c.err
	}
	if c.br.Buffered() > 0 {
		return c.br.Read(p)
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the client address from the header; for a LOCAL or UNKNOWN
// header (health checks of the load balancer) it is the peer's own.
func (c *proxyConn) RemoteAddr() net.Addr {
	c.init()
	if c.src != nil {
		return c.src
	}
	return c.Conn.RemoteAddr()
}

var (
	proxyV1Prefix = []byte("PROXY ")
	proxyV2Sig    = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// readProxyHeader reads a v1 or v2 header and returns the source address,
// or nil when the header carries none (v1 UNKNOWN, v2 LOCAL or UNSPEC).
func readProxyHeader(r *bufio.Reader) (net.Addr, error) {
	head, err := r.Peek(len(proxyV2Sig))
	if err != nil && len(head) < len(proxyV1Prefix) {
		return nil, fmt.Errorf("%w: %w", ErrProxyHeader, err)
	}
	switch {
	case bytes.Equal(head, proxyV2Sig):
		return readProxyV2(r)
	case bytes.HasPrefix(head, proxyV1Prefix):
		return readProxyV1(r)
	}
	return nil, fmt.Errorf("%w: no PROXY signature", ErrProxyHeader)
}

// v1 lines are at most 107 bytes including CRLF.
const proxyV1Max = 107

func readProxyV1(r *bufio.Reader) (net.Addr, error) {
	line := make([]byte, 0, proxyV1Max)
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("%w: v1: %w", ErrProxyHeader, err)
		}
		line = append(line, b)
		if b == '\n' {
			break
		}
		if len(line) >= proxyV1Max {
			return nil, fmt.Errorf("%w: v1 line too long", ErrProxyHeader)
		}
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return nil, fmt.Errorf("%w: v1 line not ended by CRLF", ErrProxyHeader)
	}
	f := bytes.Split(line[:len(line)-2], []byte(" "))
	if len(f) >= 2 && string(f[1]) == "UNKNOWN" {
		return nil, nil
	}
	if len(f) != 6 || (string(f[1]) != "TCP4" && string(f[1]) != "TCP6") {
		return nil, fmt.Errorf("%w: v1 malformed", ErrProxyHeader)
	}
	src, err := netip.ParseAddr(string(f[2]))
	if err != nil {
		return nil, fmt.Errorf("%w: v1 source: %w", ErrProxyHeader, err)
	}
	if _, err := netip.ParseAddr(string(f[3])); err != nil {
		return nil, fmt.Errorf("%w: v1 destination: %w", ErrProxyHeader, err)
	}
	if src.Is4() != (string(f[1]) == "TCP4") {
		return nil, fmt.Errorf("%w: v1 address family mismatch", ErrProxyHeader)
	}
	port, err := parsePort(f[4])
	if err != nil {
		return nil, err
	}
	if _, err := parsePort(f[5]); err != nil {
		return nil, err
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, port)), nil
}

func parsePort(b []byte) (uint16, error) {
	// Leading zeros are not allowed by the spec.
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return 0, fmt.Errorf("%w: v1 port %q", ErrProxyHeader, b)
	}
	n, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%w: v1 port %q", ErrProxyHeader, b)
	}
	return uint16(n), nil
}

func readProxyV2(r *bufio.Reader) (net.Addr, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: v2: %w", ErrProxyHeader, err)
	}
	verCmd, fam := hdr[12], hdr[13]
	n := int(binary.BigEndian.Uint16(hdr[14:16]))
	if verCmd>>4 != 2 {
		return nil, fmt.Errorf("%w: v2 version %d", ErrProxyHeader, verCmd>>4)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: v2 body: %w", ErrProxyHeader, err)
	}
	switch verCmd & 0xf {
	case 0: // LOCAL: the balancer's own connection, e.g. a health check
		return nil, nil
	case 1: // PROXY
	default:
		return nil, fmt.Errorf("%w: v2 command %d", ErrProxyHeader, verCmd&0xf)
	}
	switch fam {
	case 0x11, 0x12: // TCP or UDP over IPv4
		if n < 12 {
			return nil, fmt.Errorf("%w: v2 IPv4 body too short", ErrProxyHeader)
		}
		ip := netip.AddrFrom4([4]byte(body[0:4]))
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[8:10]))), nil
	case 0x21, 0x22: // over IPv6
		if n < 36 {
			return nil, fmt.Errorf("%w: v2 IPv6 body too short", ErrProxyHeader)
		}
		ip := netip.AddrFrom16([16]byte(body[0:16]))
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[32:34]))), nil
	case 0x00: // UNSPEC
		return nil, nil
	}
	return nil, fmt.Errorf("%w: v2 family %#x", ErrProxyHeader, fam)
}

// SyscallConn exposes the socket once the PROXY header is read and no
// byte after it is left buffered here: until then, waiting on the socket
// could miss bytes already read.
func (c *proxyConn) SyscallConn() (syscall.RawConn, error) {
	c.init()
	if c.err != nil || c.br.Buffered() > 0 {
		return nil, errNoRawConn
	}
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errNoRawConn
}
