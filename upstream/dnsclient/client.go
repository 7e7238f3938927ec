// Package dnsclient asks DNS servers for the addresses of a name (A and
// AAAA) or its service records (SRV), keeping the records' TTLs, which
// net.Resolver does not expose. It speaks plain DNS over UDP with EDNS0,
// falls back to TCP when an answer is truncated, and bounds every exchange
// with a deadline. It has no cache: the caller decides when to ask again.
package dnsclient

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Errors of a lookup. A name server's error answer is a *RcodeError.
var (
	// ErrNotFound is a name error (NXDOMAIN): the name does not exist.
	ErrNotFound = errors.New("dnsclient: no such name")
	// ErrNoNameServer means Client.Servers is empty.
	ErrNoNameServer = errors.New("dnsclient: no name server")
	// errMismatch marks a message that does not answer our query (wrong
	// ID or question); it is ignored and the read goes on.
	errMismatch = errors.New("dnsclient: answer does not match the query")
)

// RcodeError is an answer with an error code other than NXDOMAIN
// (SERVFAIL, REFUSED, ...).
type RcodeError struct {
	Server string
	RCode  dnsmessage.RCode
}

func (e *RcodeError) Error() string {
	return fmt.Sprintf("dnsclient: %s answered %s", e.Server, strings.TrimPrefix(e.RCode.String(), "RCode"))
}

// Endpoint is one address a name resolved to.
type Endpoint struct {
	Addr netip.Addr
	// Port, Priority and Weight come from an SRV record; zero for A and
	// AAAA.
	Port             uint16
	Priority, Weight uint16
}

// Answer is the result of a lookup.
type Answer struct {
	// Endpoints are in the order the server gave them, without
	// duplicates.
	Endpoints []Endpoint
	// TTL is the lowest TTL of the records the endpoints came from,
	// CNAMEs included: when the answer should be asked for again. Zero
	// when there are no endpoints, or when a record said not to cache.
	TTL time.Duration
}

// Client asks its name servers in order until one answers.
type Client struct {
	// Servers are the name servers, host:port, tried in order.
	Servers []string
	// Timeout bounds one exchange with one server, TCP fallback
	// included. Zero means 2s.
	Timeout time.Duration
}

// udpSize is the EDNS0 payload size advertised: the size recommended to
// avoid IP fragmentation (DNS flag day 2020). Larger answers come truncated
// and are asked again over TCP.
const udpSize = 1232

// maxTargets bounds the SRV targets whose addresses a lookup asks for
// separately when the answer did not carry them.
const maxTargets = 64

// SystemServers returns the name servers of /etc/resolv.conf as host:port,
// or 127.0.0.1:53 when it names none, as Go's resolver does.
func SystemServers() []string {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return []string{"127.0.0.1:53"}
	}
	defer f.Close()
	servers := ParseResolvConf(f)
	if len(servers) == 0 {
		return []string{"127.0.0.1:53"}
	}
	return servers
}

// ParseResolvConf returns the nameserver lines of a resolv.conf as
// host:port (port 53).
func ParseResolvConf(r io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		// A link-local IPv6 server may carry a zone: fe80::1%eth0.
		host, _, _ := strings.Cut(f[1], "%")
		if a, err := netip.ParseAddr(host); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53).String())
		}
	}
	return out
}

// LookupHost asks for the A and AAAA records of name, following CNAMEs.
// Both must be answered: one failing fails the lookup, so that a passing
// failure never shrinks the set. A name that does not exist is
// ErrNotFound; one with no addresses is an empty Answer.
func (c *Client) LookupHost(ctx context.Context, name string) (Answer, error) {
	a, errA := c.lookup(ctx, name, dnsmessage.TypeA)
	if errA != nil {
		return Answer{}, errA
	}
	aaaa, errAAAA := c.lookup(ctx, name, dnsmessage.TypeAAAA)
	if errAAAA != nil {
		return Answer{}, errAAAA
	}
	return merge(a, aaaa), nil
}

// LookupSRV asks for the SRV records of name (such as
// _http._tcp.tomcat.default.svc.cluster.local) and the addresses of their
// targets: from the answer's additional section when there, else by
// LookupHost. A target of "." (no service) is skipped, as are targets
// that do not resolve.
func (c *Client) LookupSRV(ctx context.Context, name string) (Answer, error) {
	r, err := c.exchange(ctx, name, dnsmessage.TypeSRV)
	if err != nil {
		return Answer{}, err
	}
	var out Answer
	have := false
	use := func(ttl time.Duration) {
		if !have || ttl < out.TTL {
			out.TTL = ttl
		}
		have = true
	}
	for i, s := range r.srv {
		if i == maxTargets {
			break
		}
		if s.target == "." {
			continue
		}
		addrs, ok := r.extra[s.target]
		attl := r.extraTTL[s.target]
		if !ok {
			a, err := c.LookupHost(ctx, s.target)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return Answer{}, fmt.Errorf("SRV %s target %s: %w", name, s.target, err)
			}
			for _, e := range a.Endpoints {
				addrs = append(addrs, e.Addr)
			}
			attl = a.TTL
		}
		if len(addrs) == 0 {
			continue
		}
		use(r.ttl)
		use(s.ttl)
		use(attl)
		for _, a := range addrs {
			out.add(Endpoint{Addr: a, Port: s.port, Priority: s.priority, Weight: s.weight})
		}
	}
	return out, nil
}

func (a *Answer) add(e Endpoint) {
	for _, x := range a.Endpoints {
		if x == e {
			return
		}
	}
	a.Endpoints = append(a.Endpoints, e)
}

func merge(a, b Answer) Answer {
	out := Answer{TTL: a.TTL}
	for _, e := range a.Endpoints {
		out.add(e)
	}
	for _, e := range b.Endpoints {
		out.add(e)
	}
	switch {
	case len(a.Endpoints) == 0:
		out.TTL = b.TTL
	case len(b.Endpoints) > 0:
		out.TTL = min(a.TTL, b.TTL)
	}
	return out
}

// lookup asks for one address type of name.
func (c *Client) lookup(ctx context.Context, name string, t dnsmessage.Type) (Answer, error) {
	r, err := c.exchange(ctx, name, t)
	if err != nil {
		return Answer{}, err
	}
	var out Answer
	for _, a := range r.addrs {
		out.add(Endpoint{Addr: a})
	}
	if len(out.Endpoints) > 0 {
		out.TTL = r.ttl
	}
	return out, nil
}

// exchange asks each server in turn until one answers without an error
// code; a name error is an answer (ErrNotFound), not a reason to ask the
// next server.
func (c *Client) exchange(ctx context.Context, name string, t dnsmessage.Type) (*response, error) {
	if len(c.Servers) == 0 {
		return nil, ErrNoNameServer
	}
	q, err := newQuestion(name, t)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, server := range c.Servers {
		r, err := c.exchangeWith(ctx, server, q)
		if err == nil {
			return r, nil
		}
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%s %s: %w", strings.TrimPrefix(t.String(), "Type"), name, errors.Join(errs...))
}

func newQuestion(name string, t dnsmessage.Type) (dnsmessage.Question, error) {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	n, err := dnsmessage.NewName(name)
	if err != nil {
		return dnsmessage.Question{}, fmt.Errorf("dnsclient: name %q: %w", name, err)
	}
	return dnsmessage.Question{Name: n, Type: t, Class: dnsmessage.ClassINET}, nil
}

func (c *Client) exchangeWith(ctx context.Context, server string, q dnsmessage.Question) (*response, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	id := uint16(rand.Uint32())
	msg, err := buildQuery(id, q)
	if err != nil {
		return nil, err
	}
	r, err := roundTrip(ctx, "udp", server, msg, id, q)
	if err == nil && r.truncated {
		r, err = roundTrip(ctx, "tcp", server, msg, id, q)
	}
	if err != nil {
		return nil, err
	}
	switch r.rcode {
	case dnsmessage.RCodeSuccess:
		return r, nil
	case dnsmessage.RCodeNameError:
		return nil, fmt.Errorf("%s: %w", q.Name, ErrNotFound)
	}
	return nil, &RcodeError{Server: server, RCode: r.rcode}
}

func buildQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 2, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	var opt dnsmessage.ResourceHeader
	err := errors.Join(
		b.StartQuestions(), b.Question(q), b.StartAdditionals(),
		opt.SetEDNS0(udpSize, dnsmessage.RCodeSuccess, false),
		b.OPTResource(opt, dnsmessage.OPTResource{}),
	)
	if err != nil {
		return nil, fmt.Errorf("dnsclient: building query: %w", err)
	}
	// The first two bytes are room for the TCP length prefix.
	return b.Finish()
}

// roundTrip sends msg (after its two-byte TCP length prefix) to server
// and reads the answer to it, ignoring messages that answer something
// else, until ctx's deadline.
func roundTrip(ctx context.Context, network, server string, msg []byte, id uint16, q dnsmessage.Question) (*response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	body := msg[2:]
	if network == "tcp" {
		binary.BigEndian.PutUint16(msg, uint16(len(body)))
		if _, err := conn.Write(msg); err != nil {
			return nil, fmt.Errorf("dnsclient: %s %s: %w", network, server, err)
		}
		var n [2]byte
		if _, err := io.ReadFull(conn, n[:]); err != nil {
			return nil, fmt.Errorf("dnsclient: %s %s: %w", network, server, err)
		}
		buf := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(conn, buf); err != nil {
			return nil, fmt.Errorf("dnsclient: %s %s: %w", network, server, err)
		}
		r, err := parseResponse(buf, id, q)
		if err != nil {
			return nil, fmt.Errorf("dnsclient: %s %s: %w", network, server, err)
		}
		return r, nil
	}
	if _, err := conn.Write(body); err != nil {
		return nil, fmt.Errorf("dnsclient: %s %s: %w", network, server, err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("dnsclient: %s %s: %w", network, server, err)
		}
		r, err := parseResponse(buf[:n], id, q)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, errMismatch) {
			return nil, fmt.Errorf("dnsclient: %s %s: %w", network, server, err)
		}
	}
}
