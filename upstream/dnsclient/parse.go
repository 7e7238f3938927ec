package dnsclient

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// response is what an answer says about the question asked.
type response struct {
	truncated bool
	rcode     dnsmessage.RCode
	// addrs are the addresses of the asked type found on the name's CNAME
	// chain (A or AAAA questions).
	addrs []netip.Addr
	// srv are the SRV records on the chain (SRV questions).
	srv []srvRecord
	// ttl is the lowest TTL of the chain's CNAMEs and of addrs;
	// noTTL when there is neither.
	ttl time.Duration
	// extra are the addresses of the additional section by lowercased
	// name, with the lowest TTL of each name's.
	extra    map[string][]netip.Addr
	extraTTL map[string]time.Duration
}

type srvRecord struct {
	target                 string // lowercased, with the final dot
	port, priority, weight uint16
	ttl                    time.Duration
}

// noTTL stands for "no record limits the TTL": above any TTL a record can
// carry (RFC 2181 caps them at 2^31-1 seconds).
const noTTL = time.Duration(1<<31) * time.Second

// maxChain bounds the CNAMEs followed from the asked name.
const maxChain = 8

// ttlOf reads a record's TTL; RFC 2181 section 8 reads a TTL with the top
// bit set as zero.
func ttlOf(h dnsmessage.ResourceHeader) time.Duration {
	if h.TTL >= 1<<31 {
		return 0
	}
	return time.Duration(h.TTL) * time.Second
}

func lower(n dnsmessage.Name) string { return strings.ToLower(n.String()) }

// answerRecord is one parsed answer-section record of interest.
type answerRecord struct {
	name  string
	typ   dnsmessage.Type
	ttl   time.Duration
	addr  netip.Addr
	cname string
	srv   srvRecord
}

// parseResponse parses msg as the answer to query id asking q. A message
// that is no answer to it (another ID, another question) is errMismatch.
// A truncated answer is returned with only truncated and rcode set.
func parseResponse(msg []byte, id uint16, q dnsmessage.Question) (*response, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMismatch, err)
	}
	if !h.Response || h.ID != id {
		return nil, errMismatch
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMismatch, err)
	}
	if len(qs) != 1 || qs[0].Type != q.Type || qs[0].Class != q.Class || !strings.EqualFold(qs[0].Name.String(), q.Name.String()) {
		return nil, errMismatch
	}
	r := &response{truncated: h.Truncated, rcode: h.RCode, ttl: noTTL}
	if h.Truncated || h.RCode != dnsmessage.RCodeSuccess {
		return r, nil
	}
	var answers []answerRecord
	for {
		rh, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("answer section: %w", err)
		}
		a := answerRecord{name: lower(rh.Name), typ: rh.Type, ttl: ttlOf(rh)}
		switch {
		case rh.Class != dnsmessage.ClassINET:
			err = p.SkipAnswer()
			a.typ = 0
		case rh.Type == dnsmessage.TypeA:
			var v dnsmessage.AResource
			v, err = p.AResource()
			a.addr = netip.AddrFrom4(v.A)
		case rh.Type == dnsmessage.TypeAAAA:
			var v dnsmessage.AAAAResource
			v, err = p.AAAAResource()
			a.addr = netip.AddrFrom16(v.AAAA)
		case rh.Type == dnsmessage.TypeCNAME:
			var v dnsmessage.CNAMEResource
			v, err = p.CNAMEResource()
			a.cname = lower(v.CNAME)
		case rh.Type == dnsmessage.TypeSRV:
			var v dnsmessage.SRVResource
			v, err = p.SRVResource()
			a.srv = srvRecord{target: lower(v.Target), port: v.Port, priority: v.Priority, weight: v.Weight, ttl: a.ttl}
		default:
			err = p.SkipAnswer()
			a.typ = 0
		}
		if err != nil {
			return nil, fmt.Errorf("answer section: %w", err)
		}
		if a.typ != 0 {
			answers = append(answers, a)
		}
	}
	// Follow the CNAME chain from the asked name; only records on it
	// answer the question.
	name := lower(q.Name)
	for range maxChain {
		next := ""
		for _, a := range answers {
			if a.typ == dnsmessage.TypeCNAME && a.name == name {
				next = a.cname
				r.ttl = min(r.ttl, a.ttl)
				break
			}
		}
		if next == "" {
			break
		}
		name = next
	}
	for _, a := range answers {
		if a.name != name || a.typ != q.Type {
			continue
		}
		switch a.typ {
		case dnsmessage.TypeA, dnsmessage.TypeAAAA:
			r.addrs = append(r.addrs, a.addr)
			r.ttl = min(r.ttl, a.ttl)
		case dnsmessage.TypeSRV:
			r.srv = append(r.srv, a.srv)
		}
	}
	if q.Type != dnsmessage.TypeSRV {
		return r, nil
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return nil, fmt.Errorf("authority section: %w", err)
	}
	for {
		rh, err := p.AdditionalHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("additional section: %w", err)
		}
		var addr netip.Addr
		switch {
		case rh.Class != dnsmessage.ClassINET:
			err = p.SkipAdditional()
		case rh.Type == dnsmessage.TypeA:
			var v dnsmessage.AResource
			v, err = p.AResource()
			addr = netip.AddrFrom4(v.A)
		case rh.Type == dnsmessage.TypeAAAA:
			var v dnsmessage.AAAAResource
			v, err = p.AAAAResource()
			addr = netip.AddrFrom16(v.AAAA)
		default:
			err = p.SkipAdditional()
		}
		if err != nil {
			return nil, fmt.Errorf("additional section: %w", err)
		}
		if !addr.IsValid() {
			continue
		}
		if r.extra == nil {
			r.extra, r.extraTTL = map[string][]netip.Addr{}, map[string]time.Duration{}
		}
		n := lower(rh.Name)
		if _, ok := r.extraTTL[n]; !ok {
			r.extraTTL[n] = noTTL
		}
		r.extra[n] = append(r.extra[n], addr)
		r.extraTTL[n] = min(r.extraTTL[n], ttlOf(rh))
	}
	return r, nil
}
