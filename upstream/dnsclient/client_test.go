package dnsclient

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/sluice-gw/sluice/upstream/dnsclient/dnstest"
)

func ep(addr string) Endpoint { return Endpoint{Addr: netip.MustParseAddr(addr)} }

func srvEP(addr string, port, prio, weight uint16) Endpoint {
	return Endpoint{Addr: netip.MustParseAddr(addr), Port: port, Priority: prio, Weight: weight}
}

func TestLookup(t *testing.T) {
	records := []dnsmessage.Resource{
		dnstest.A("tomcat.test.", 30, "10.0.0.1"),
		dnstest.A("tomcat.test.", 10, "10.0.0.2"),
		dnstest.AAAA("tomcat.test.", 20, "fd00::1"),
		dnstest.CNAME("alias.test.", 5, "tomcat.test."),
		dnstest.CNAME("loop.test.", 5, "loop.test."),
		dnstest.A("v4only.test.", 60, "10.0.0.9"),
		dnstest.SRV("_http._tcp.tomcat.test.", 15, 0, 50, 8080, "a.test."),
		dnstest.SRV("_http._tcp.tomcat.test.", 15, 1, 50, 8081, "b.test."),
		dnstest.SRV("_http._tcp.tomcat.test.", 15, 0, 10, 8082, "."),
		dnstest.A("a.test.", 3, "10.0.1.1"),
		dnstest.A("b.test.", 100, "10.0.1.2"),
		dnstest.AAAA("b.test.", 100, "fd00::2"),
		dnstest.SRV("_http._tcp.gone.test.", 15, 0, 50, 8080, "missing.test."),
		dnstest.SRV("_http._tcp.empty.test.", 15, 0, 50, 8080, "."),
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
			s := dnstest.NewServer(t, dnstest.Zone{Records: records, Glue: tt.glue}.Answer)
			c := &Client{Servers: []string{s.Addr}, Timeout: 5 * time.Second}
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
	s := dnstest.NewServer(t, func(q dnsmessage.Question, tcp bool) dnsmessage.Message {
		if !tcp {
			return dnsmessage.Message{Header: dnsmessage.Header{Truncated: true}}
		}
		var m dnsmessage.Message
		if q.Type == dnsmessage.TypeA {
			for i := range 100 {
				m.Answers = append(m.Answers, dnstest.A("big.test.", 30, netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}).String()))
			}
		}
		return m
	})
	c := &Client{Servers: []string{s.Addr}}
	got, err := c.LookupHost(t.Context(), "big.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Endpoints) != 100 || s.TCP.Load() != 2 {
		t.Fatalf("got %d endpoints over %d TCP exchanges, want 100 over 2", len(got.Endpoints), s.TCP.Load())
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
			m.Answers = []dnsmessage.Resource{dnstest.A("x.test.", 30, "10.9.9.9")}
			b, _ := m.Pack()
			pc.WriteTo(b, from)
			m.Header.ID = id
			m.Answers = nil
			if m.Questions[0].Type == dnsmessage.TypeA {
				m.Answers = []dnsmessage.Resource{dnstest.A("x.test.", 30, "10.0.0.1")}
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
	servfail := dnstest.NewServer(t, dnstest.Fail(dnsmessage.RCodeServerFailure))
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	good := dnstest.NewServer(t, dnstest.Zone{Records: []dnsmessage.Resource{dnstest.A("x.test.", 30, "10.0.0.1")}}.Answer)

	c := &Client{Servers: []string{servfail.Addr}, Timeout: time.Second}
	_, err = c.LookupHost(t.Context(), "x.test")
	var re *RcodeError
	if !errors.As(err, &re) || re.RCode != dnsmessage.RCodeServerFailure {
		t.Fatalf("err = %v, want a SERVFAIL RcodeError", err)
	}

	c = &Client{Servers: []string{servfail.Addr, silent.LocalAddr().String(), good.Addr}, Timeout: 200 * time.Millisecond}
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
