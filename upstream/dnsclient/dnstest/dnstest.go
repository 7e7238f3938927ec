// Package dnstest runs an in-process DNS server for tests, answering over
// UDP and TCP on one loopback port, and builds the records it serves.
package dnstest

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Handler answers one question; tcp tells which transport asked. The
// server fills in the ID, the response bit and the question when left
// zero.
type Handler func(q dnsmessage.Question, tcp bool) dnsmessage.Message

// Server answers DNS over UDP and TCP on one 127.0.0.1 port.
type Server struct {
	// Addr is host:port of both listeners.
	Addr string
	// UDP and TCP count the queries and connections received.
	UDP, TCP atomic.Int32

	mu      sync.Mutex // guards handler
	handler Handler
}

// NewServer starts a server answering with h; t's cleanup stops it.
func NewServer(t testing.TB, h Handler) *Server {
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
		t.Fatal("dnstest: no port free for both UDP and TCP")
	}
	s := &Server{Addr: pc.LocalAddr().String(), handler: h}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.UDP.Add(1)
			if out := s.reply(buf[:n], false); out != nil {
				pc.WriteTo(out, from)
			}
		}
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.TCP.Add(1)
			s.serveTCP(c)
		}
	})
	return s
}

// SetHandler replaces the handler for the queries that follow.
func (s *Server) SetHandler(h Handler) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// serveTCP answers one query on c and closes it.
func (s *Server) serveTCP(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return
	}
	msg := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(c, msg); err != nil {
		return
	}
	if out := s.reply(msg, true); out != nil {
		c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...))
	}
}

func (s *Server) reply(msg []byte, tcp bool) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(msg); err != nil || len(m.Questions) != 1 {
		return nil
	}
	s.mu.Lock()
	h := s.handler
	s.mu.Unlock()
	out := h(m.Questions[0], tcp)
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

// Name is dnsmessage.MustNewName.
func Name(s string) dnsmessage.Name { return dnsmessage.MustNewName(s) }

func header(n string, t dnsmessage.Type, ttl uint32) dnsmessage.ResourceHeader {
	return dnsmessage.ResourceHeader{Name: Name(n), Type: t, Class: dnsmessage.ClassINET, TTL: ttl}
}

// A is an A record; n is fully qualified.
func A(n string, ttl uint32, ip string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: header(n, dnsmessage.TypeA, ttl), Body: &dnsmessage.AResource{A: netip.MustParseAddr(ip).As4()}}
}

// AAAA is an AAAA record.
func AAAA(n string, ttl uint32, ip string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: header(n, dnsmessage.TypeAAAA, ttl), Body: &dnsmessage.AAAAResource{AAAA: netip.MustParseAddr(ip).As16()}}
}

// CNAME is a CNAME record.
func CNAME(n string, ttl uint32, target string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: header(n, dnsmessage.TypeCNAME, ttl), Body: &dnsmessage.CNAMEResource{CNAME: Name(target)}}
}

// SRV is an SRV record.
func SRV(n string, ttl uint32, prio, weight, port uint16, target string) dnsmessage.Resource {
	return dnsmessage.Resource{Header: header(n, dnsmessage.TypeSRV, ttl),
		Body: &dnsmessage.SRVResource{Priority: prio, Weight: weight, Port: port, Target: Name(target)}}
}

// Zone answers from a fixed list of records like an authoritative server:
// the records of the asked name and type along its CNAME chain, NXDOMAIN
// for a name it has no record of, and with Glue the addresses of SRV
// targets as additional records.
type Zone struct {
	Records []dnsmessage.Resource
	Glue    bool
}

// maxChain bounds the CNAMEs Answer follows.
const maxChain = 8

// Answer is the Zone's Handler.
func (z Zone) Answer(q dnsmessage.Question, _ bool) dnsmessage.Message {
	var m dnsmessage.Message
	n := strings.ToLower(q.Name.String())
	known := false
	for range maxChain {
		var next string
		for _, r := range z.Records {
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
	if z.Glue && q.Type == dnsmessage.TypeSRV {
		for _, a := range m.Answers {
			srv, ok := a.Body.(*dnsmessage.SRVResource)
			if !ok {
				continue
			}
			for _, r := range z.Records {
				if strings.EqualFold(r.Header.Name.String(), srv.Target.String()) && r.Header.Type != dnsmessage.TypeSRV {
					m.Additionals = append(m.Additionals, r)
				}
			}
		}
	}
	return m
}

// Fail answers every question with rcode (SERVFAIL, REFUSED, ...).
func Fail(rcode dnsmessage.RCode) Handler {
	return func(dnsmessage.Question, bool) dnsmessage.Message {
		return dnsmessage.Message{Header: dnsmessage.Header{RCode: rcode}}
	}
}
