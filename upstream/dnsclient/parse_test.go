package dnsclient

import (
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/sluice-gw/sluice/upstream/dnsclient/dnstest"
)

// FuzzParseResponse feeds arbitrary messages to the parser as answers to
// A and SRV questions: it must not panic, and what it accepts must hold
// only records of the asked type.
func FuzzParseResponse(f *testing.F) {
	for _, m := range []dnsmessage.Message{
		{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{{Name: dnstest.Name("x.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}},
			Answers: []dnsmessage.Resource{dnstest.CNAME("x.test.", 5, "y.test."), dnstest.A("y.test.", 30, "10.0.0.1")}},
		{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{{Name: dnstest.Name("x.test."), Type: dnsmessage.TypeSRV, Class: dnsmessage.ClassINET}},
			Answers:     []dnsmessage.Resource{dnstest.SRV("x.test.", 5, 0, 1, 80, "a.test.")},
			Additionals: []dnsmessage.Resource{dnstest.A("a.test.", 30, "10.0.0.1"), dnstest.AAAA("a.test.", 30, "fd00::1")}},
	} {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	qA, _ := newQuestion("x.test", dnsmessage.TypeA)
	qSRV, _ := newQuestion("x.test", dnsmessage.TypeSRV)
	f.Fuzz(func(t *testing.T, msg []byte) {
		if r, err := parseResponse(msg, 7, qA); err == nil {
			if len(r.srv) != 0 {
				t.Fatalf("SRV records in an A answer: %v", r.srv)
			}
			for _, a := range r.addrs {
				if !a.Is4() {
					t.Fatalf("non-IPv4 address %v in an A answer", a)
				}
			}
		}
		if r, err := parseResponse(msg, 7, qSRV); err == nil && len(r.addrs) != 0 {
			t.Fatalf("addresses in an SRV answer: %v", r.addrs)
		}
	})
}
