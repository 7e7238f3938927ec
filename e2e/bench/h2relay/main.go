// Command h2relay is a TCP relay for HTTP/2 cleartext connections that
// counts the frames going through it, both ways: frames by type and
// payload bytes, HEADERS with END_STREAM, header block sizes, WINDOW_UPDATE
// increments, SETTINGS seen, read syscalls that brought bytes (about the
// peer's writes), connections, and the streams in flight on a connection
// when a new one opens. It prints the first four request HEADERS blocks
// in hex. e2e/bench/tomcatcpu.sh (RELAY=1) puts it between a proxy and
// Tomcat, to see what each proxy puts on the wire (BENCHMARKS.md).
//
// Usage: h2relay LISTEN=TARGET ...
// On stdin, "reset" zeroes the counts and any other line prints them;
// SIGUSR1 prints them too, SIGTERM and SIGINT print them and exit.
// Measurement only: one goroutine per direction and connection, no
// bound on connections, not for production.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

var names = []string{"DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"}

type dirStats struct {
	frames         [10]atomic.Int64
	bytes          [10]atomic.Int64
	hdrEndStr      atomic.Int64 // HEADERS with END_STREAM
	hdrFirst       atomic.Int64 // HEADERS first byte 0x20 (table size update)
	hpackInc       atomic.Int64 // literal with incremental indexing reps seen (first byte class only approx)
	reads          atomic.Int64 // read syscalls that returned data (≈ peer writes)
	readBytes      atomic.Int64
	wuInc          atomic.Int64 // sum of WINDOW_UPDATE increments
	wuConn         atomic.Int64
	settingsAck    atomic.Int64
	dataEnd        atomic.Int64
	zeroData       atomic.Int64
	maxStreamsSeen atomic.Int64
	sizeHist       sync.Map // HEADERS block size -> count
	settings       sync.Map
}

var up, down dirStats // up: proxy->server, down: server->proxy
var conns, inflSum, inflN, samples atomic.Int64

func main() {
	for _, a := range os.Args[1:] {
		p := strings.SplitN(a, "=", 2)
		ln, err := net.Listen("tcp", p[0])
		if err != nil {
			panic(err)
		}
		go serve(ln, p[1])
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		r := bufio.NewScanner(os.Stdin)
		for r.Scan() {
			if r.Text() == "reset" {
				reset()
				fmt.Println("reset")
			} else {
				dump()
			}
		}
	}()
	for s := range sig {
		dump()
		if s != syscall.SIGUSR1 {
			os.Exit(0)
		}
	}
}

func reset() {
	for _, d := range []*dirStats{&up, &down} {
		for i := range d.frames {
			d.frames[i].Store(0)
			d.bytes[i].Store(0)
		}
		d.hdrEndStr.Store(0)
		d.hdrFirst.Store(0)
		d.hpackInc.Store(0)
		d.reads.Store(0)
		d.readBytes.Store(0)
		d.wuInc.Store(0)
		d.wuConn.Store(0)
		d.settingsAck.Store(0)
		d.dataEnd.Store(0)
		d.zeroData.Store(0)
		d.sizeHist.Range(func(k, v any) bool { d.sizeHist.Delete(k); return true })
		inflSum.Store(0)
		inflN.Store(0)
		samples.Store(0)
	}
}

func dump() {
	fmt.Printf("conns %d, streams in flight at open (avg) %.1f over %d opens\n", conns.Load(), float64(inflSum.Load())/float64(max(1, inflN.Load())), inflN.Load())
	for _, x := range []struct {
		n string
		d *dirStats
	}{{"proxy->server", &up}, {"server->proxy", &down}} {
		d := x.d
		fmt.Printf("== %s: reads %d bytes %d\n", x.n, d.reads.Load(), d.readBytes.Load())
		for i, n := range names {
			if f := d.frames[i].Load(); f > 0 {
				fmt.Printf("  %-14s %9d frames %11d payload bytes (avg %.1f)\n", n, f, d.bytes[i].Load(), float64(d.bytes[i].Load())/float64(f))
			}
		}
		fmt.Printf("  HEADERS w/ END_STREAM %d, w/ size-update first %d, DATA w/ END_STREAM %d, empty DATA %d, WU conn %d, WU incr sum %d, SETTINGS ack %d\n",
			d.hdrEndStr.Load(), d.hdrFirst.Load(), d.dataEnd.Load(), d.zeroData.Load(), d.wuConn.Load(), d.wuInc.Load(), d.settingsAck.Load())
		var ks []int
		m := map[int]int64{}
		d.sizeHist.Range(func(k, v any) bool { ks = append(ks, k.(int)); m[k.(int)] = v.(*atomic.Int64).Load(); return true })
		sort.Ints(ks)
		fmt.Printf("  HEADERS block sizes:")
		for _, k := range ks {
			fmt.Printf(" %d:%d", k, m[k])
		}
		fmt.Println()
		d.settings.Range(func(k, v any) bool { fmt.Printf("  setting %v\n", k); return true })
	}
}

func serve(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				return
			}
			conns.Add(1)
			inf := new(atomic.Int64)
			go pipe(c, s, &up, true, inf)
			pipe(s, c, &down, false, inf)
		}()
	}
}

func pipe(src, dst net.Conn, d *dirStats, preface bool, inf *atomic.Int64) {
	defer dst.(*net.TCPConn).CloseWrite()
	var p parser
	p.d = d
	p.inflight = inf
	p.isUp = preface
	if preface {
		p.skip = 24
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			d.reads.Add(1)
			d.readBytes.Add(int64(n))
			p.feed(buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
			}
			return
		}
	}
}

type parser struct {
	d        *dirStats
	skip     int
	inflight *atomic.Int64
	isUp     bool
	acc      []byte
}

func (p *parser) feed(b []byte) {
	if p.skip > 0 {
		k := min(p.skip, len(b))
		p.skip -= k
		b = b[k:]
	}
	p.acc = append(p.acc, b...)
	for len(p.acc) >= 9 {
		l := int(p.acc[0])<<16 | int(p.acc[1])<<8 | int(p.acc[2])
		if len(p.acc) < 9+l {
			break
		}
		t, fl := p.acc[3], p.acc[4]
		sid := binary.BigEndian.Uint32(p.acc[5:9]) & 0x7fffffff
		pl := p.acc[9 : 9+l]
		d := p.d
		if int(t) < 10 {
			d.frames[t].Add(1)
			d.bytes[t].Add(int64(l))
		}
		switch t {
		case 0:
			if fl&1 != 0 && !p.isUp {
				p.inflight.Add(-1)
			}
			if fl&1 != 0 {
				d.dataEnd.Add(1)
			}
			if l == 0 {
				d.zeroData.Add(1)
			}
		case 1:
			if p.isUp {
				n := p.inflight.Add(1)
				inflSum.Add(n)
				inflN.Add(1)
				if samples.Add(1) <= 4 {
					fmt.Printf("sample HEADERS up flags=%x len=%d: %x\n", fl, l, pl)
				}
			} else if fl&1 != 0 {
				p.inflight.Add(-1)
			}
			if fl&1 != 0 {
				d.hdrEndStr.Add(1)
			}
			blk := pl
			if fl&0x8 != 0 && len(blk) > 0 {
				blk = blk[1 : len(blk)-int(pl[0])]
			}
			if fl&0x20 != 0 {
				blk = blk[5:]
			}
			if len(blk) > 0 && blk[0]&0xe0 == 0x20 {
				d.hdrFirst.Add(1)
			}
			v, _ := d.sizeHist.LoadOrStore(len(blk), new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		case 4:
			if fl&1 != 0 {
				d.settingsAck.Add(1)
			} else {
				for i := 0; i+6 <= len(pl); i += 6 {
					d.settings.LoadOrStore(fmt.Sprintf("id=%d val=%d", binary.BigEndian.Uint16(pl[i:]), binary.BigEndian.Uint32(pl[i+2:])), true)
				}
			}
		case 8:
			if sid == 0 {
				d.wuConn.Add(1)
			}
			if len(pl) >= 4 {
				d.wuInc.Add(int64(binary.BigEndian.Uint32(pl) & 0x7fffffff))
			}
		}
		p.acc = p.acc[9+l:]
	}
	if len(p.acc) == 0 {
		p.acc = p.acc[:0:0]
	}
}
