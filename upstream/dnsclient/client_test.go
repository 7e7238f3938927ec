package dnsclient

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeServer answers DNS over UDP and TCP on one 127.0.0.1 port with
// what answer returns for each question.
type fakeServer struct {
	addr   string
	answer func(q dnsmessage.Question, tcp bool) dnsmessage.Message
	udpN   atomic.Int32
	tcpN   atomic.Int32
}

func newFakeServer(t *testing.T, answer func(q dnsmessage.Question, tcp bool) dnsmessage.Message) *fakeServer {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	s := &fakeServer{addr: pc.LocalAddr().String(), answer: answer}
	done := make(chan struct{}, 2)
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		<-done
		<-done
	})
	go func() {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.udpN.Add(1)
			if out := s.reply(buf[:n], false); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.tcpN.Add(1)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var n [2]byte
			if _, err := io.ReadFull(c, n[:]); err == nil {
				msg := make([]byte, binary.BigEndian.Uint16(n[:]))
				if _, err := io.ReadFull(c, msg); err == nil {
					if out := s.reply(msg, true); out != nil {
						c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(out))))
						c.Write(out)
					}
				}
			}
			c.Close()
		}
	}()
	return s
}

func (s *fakeServer) reply(msg []byte, tcp bool) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(msg); err != nil || len(m.Questions) != 1 {
		return nil
	}
	out := s.answer(m.Questions[0], tcp)
	if out.Header.ID == 0 {
		out.Header.ID = m.Header.ID
	}
	out.Header.Response = true
	if out.Questions == nil {
		out.Questions = m.Questions
	}
	b, err := out.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func name(s string) dnsmessage.Name { return dnsmessage.MustNewName(s) }

func rrA(n string, ttl uint32, ip string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: name(n), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.AResource{A: netip.MustParseAddr(ip).As4()},
	}
}

func rrAAAA(n string, ttl uint32, ip string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: name(n), Type: dnsmessage.TypeAAAA, Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr(ip).As16()},
	}
}

func rrCNAME(n string, ttl uint32, target string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: name(n), Type: dnsmessage.TypeCNAME, Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.CNAMEResource{CNAME: name(target)},
	}
}

func rrSRV(n string, ttl uint32, prio, weight, port uint16, target string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: name(n), Type: dnsmessage.TypeSRV, Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.SRVResource{Priority: prio, Weight: weight, Port: port, Target: name(target)},
	}
}

// zone answers from a fixed list of records, like an authoritative
// server: records of the asked name and type, the CNAME chain, and for SRV
// the targets' addresses as additional records when glue is set.
type zone struct {
	records []dnsmessage.Resource
	glue    bool
}

func (z zone) answer(q dnsmessage.Question, _ bool) dnsmessage.Message {
	var m dnsmessage.Message
	n := strings.ToLower(q.Name.String())
	known := false
	for range maxChain {
		var next string
		for _, r := range z.records {
			if strings.ToLower(r.Header.Name.String()) != n {
				continue
			}
			known = true
			switch {
			case r.Header.Type == q.Type:
				m.Answers = append(m.Answers, r)
			case r.Header.Type == dnsmessage.TypeCNAME:
				m.Answers = append(m.Answers, r)
				next = strings.ToLower(r.Body.(*dnsmessage.CNAMEResource).CNAME.String())
			}
		}
		if next == "" {
			break
		}
		n = next
	}
	if !known {
		m.Header.RCode = dnsmessage.RCodeNameError
	}
	if z.glue && q.Type == dnsmessage.TypeSRV {
		for _, a := range m.Answers {
			srv, ok := a.Body.(*dnsmessage.SRVResource)
			if !ok {
				continue
			}
			for _, r := range z.records {
				if strings.EqualFold(r.Header.Name.String(), srv.Target.String()) && r.Header.Type != dnsmessage.TypeSRV {
					m.Additionals = append(m.Additionals, r)
				}
			}
		}
	}
	return m
}

func ep(addr string) Endpoint { return Endpoint{Addr: netip.MustParseAddr(addr)} }

func srvEP(addr string, port, prio, weight uint16) Endpoint {
	return Endpoint{Addr: netip.MustParseAddr(addr), Port: port, Priority: prio, Weight: weight}
}

func TestLookup(t *testing.T) {
	records := []dnsmessage.Resource{
		rrA("tomcat.test.", 30, "10.0.0.1"),
		rrA("tomcat.test.", 10, "10.0.0.2"),
		rrAAAA("tomcat.test.", 20, "fd00::1"),
		rrCNAME("alias.test.", 5, "tomcat.test."),
		rrCNAME("loop.test.", 5, "loop.test."),
		rrA("v4only.test.", 60, "10.0.0.9"),
		rrSRV("_http._tcp.tomcat.test.", 15, 0, 50, 8080, "a.test."),
		rrSRV("_http._tcp.tomcat.test.", 15, 1, 50, 8081, "b.test."),
		rrSRV("_http._tcp.tomcat.test.", 15, 0, 10, 8082, "."),
		rrA("a.test.", 3, "10.0.1.1"),
		rrA("b.test.", 100, "10.0.1.2"),
		rrAAAA("b.test.", 100, "fd00::2"),
		rrSRV("_http._tcp.gone.test.", 15, 0, 50, 8080, "missing.test."),
		rrSRV("_http._tcp.empty.test.", 15, 0, 50, 8080, "."),
	}
	tests := []struct {
		name    string
		srv     bool
		glue    bool
		q       string
		want    []Endpoint
		ttl     time.Duration
		wantErr error
	}{
		{name: "A and AAAA, lowest TTL", q: "tomcat.test", want: []Endpoint{ep("10.0.0.1"), ep("10.0.0.2"), ep("fd00::1")}, ttl: 10 * time.Second},
		{name: "fully qualified and mixed case", q: "TomCat.Test.", want: []Endpoint{ep("10.0.0.1"), ep("10.0.0.2"), ep("fd00::1")}, ttl: 10 * time.Second},
		{name: "CNAME TTL counts", q: "alias.test", want: []Endpoint{ep("10.0.0.1"), ep("10.0.0.2"), ep("fd00::1")}, ttl: 5 * time.Second},
		{name: "no AAAA", q: "v4only.test", want: []Endpoint{ep("10.0.0.9")}, ttl: time.Minute},
		{name: "CNAME loop has no address", q: "loop.test"},
		{name: "no such name", q: "nope.test", wantErr: ErrNotFound},
		{name: "SRV with glue", srv: true, glue: true, q: "_http._tcp.tomcat.test",
			want: []Endpoint{srvEP("10.0.1.1", 8080, 0, 50), srvEP("10.0.1.2", 8081, 1, 50), srvEP("fd00::2", 8081, 1, 50)}, ttl: 3 * time.Second},
		{name: "SRV targets asked apart", srv: true, q: "_http._tcp.tomcat.test",
			want: []Endpoint{srvEP("10.0.1.1", 8080, 0, 50), srvEP("10.0.1.2", 8081, 1, 50), srvEP("fd00::2", 8081, 1, 50)}, ttl: 3 * time.Second},
		{name: "SRV target that does not resolve", srv: true, q: "_http._tcp.gone.test"},
		{name: "SRV with no service", srv: true, q: "_http._tcp.empty.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, zone{records: records, glue: tt.glue}.answer)
			c := &Client{Servers: []string{s.addr}, Timeout: 5 * time.Second}
			var got Answer
			var err error
			if tt.srv {
				got, err = c.LookupSRV(t.Context(), tt.q)
			} else {
				got, err = c.LookupHost(t.Context(), tt.q)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Endpoints) != len(tt.want) {
				t.Fatalf("endpoints = %v, want %v", got.Endpoints, tt.want)
			}
			for i := range tt.want {
				if got.Endpoints[i] != tt.want[i] {
					t.Fatalf("endpoints = %v, want %v", got.Endpoints, tt.want)
				}
			}
			if got.TTL != tt.ttl {
				t.Fatalf("TTL = %v, want %v", got.TTL, tt.ttl)
			}
		})
	}
}

// TestTruncatedAnswerIsAskedAgainOverTCP: a UDP answer with the TC bit
// is asked again over TCP, whose answer is used.
func TestTruncatedAnswerIsAskedAgainOverTCP(t *testing.T) {
	s := newFakeServer(t, func(q dnsmessage.Question, tcp bool) dnsmessage.Message {
		if !tcp {
			return dnsmessage.Message{Header: dnsmessage.Header{Truncated: true}}
		}
		var m dnsmessage.Message
		if q.Type == dnsmessage.TypeA {
			for i := range 100 {
				m.Answers = append(m.Answers, rrA("big.test.", 30, netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}).String()))
			}
		}
		return m
	})
	c := &Client{Servers: []string{s.addr}}
	got, err := c.LookupHost(t.Context(), "big.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Endpoints) != 100 || s.tcpN.Load() != 2 {
		t.Fatalf("got %d endpoints over %d TCP exchanges, want 100 over 2", len(got.Endpoints), s.tcpN.Load())
	}
}

// TestAnswersToOtherQueriesAreIgnored: a UDP message with another ID (a
// late answer, or a spoofing attempt) is skipped and the real answer used.
func TestAnswersToOtherQueriesAreIgnored(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil {
				continue
			}
			id := m.Header.ID
			m.Header.Response = true
			m.Additionals = nil
			m.Header.ID = id + 1
			m.Answers = []dnsmessage.Resource{rrA("x.test.", 30, "10.9.9.9")}
			b, _ := m.Pack()
			pc.WriteTo(b, from)
			m.Header.ID = id
			m.Answers = nil
			if m.Questions[0].Type == dnsmessage.TypeA {
				m.Answers = []dnsmessage.Resource{rrA("x.test.", 30, "10.0.0.1")}
			}
			b, _ = m.Pack()
			pc.WriteTo(b, from)
		}
	}()
	c := &Client{Servers: []string{pc.LocalAddr().String()}}
	got, err := c.LookupHost(t.Context(), "x.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Endpoints) != 1 || got.Endpoints[0] != ep("10.0.0.1") {
		t.Fatalf("endpoints = %v, want only 10.0.0.1", got.Endpoints)
	}
}

// TestFailingServerIsSkipped: SERVFAIL and silence move on to the next
// server; an exchange never outlives the timeout.
func TestFailingServerIsSkipped(t *testing.T) {
	servfail := newFakeServer(t, func(dnsmessage.Question, bool) dnsmessage.Message {
		return dnsmessage.Message{Header: dnsmessage.Header{RCode: dnsmessage.RCodeServerFailure}}
	})
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	good := newFakeServer(t, zone{records: []dnsmessage.Resource{rrA("x.test.", 30, "10.0.0.1")}}.answer)

	c := &Client{Servers: []string{servfail.addr}, Timeout: time.Second}
	_, err = c.LookupHost(t.Context(), "x.test")
	var re *RcodeError
	if !errors.As(err, &re) || re.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("err = %v, want a SERVFAIL RcodeError", err)
	}

	c = &Client{Servers: []string{servfail.addr, silent.LocalAddr().String(), good.addr}, Timeout: 200 * time.Millisecond}
	start := time.Now()
	got, err := c.LookupHost(t.Context(), "x.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Endpoints) != 1 {
		t.Fatalf("endpoints = %v", got.Endpoints)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	c = &Client{Servers: []string{silent.LocalAddr().String()}, Timeout: time.Hour}
	if _, err := c.LookupHost(ctx, "x.test"); err == nil {
		t.Fatal("a silent server answered")
	}
}

func TestParseResolvConf(t *testing.T) {
	got := ParseResolvConf(strings.NewReader("# comment\nsearch example.com\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:5\n"))
	want := []string{"10.0.0.53:53", "[fe80::1]:53"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v, want %v", got, want)
	}
}
