package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// A minimal HTTP/2 frame writer/reader, enough to send the exact frame
// sequences (HEADERS then RST_STREAM, bursts of PING/SETTINGS) that decide
// whether Tomcat answers GOAWAY ENHANCE_YOUR_CALM. Go's client cannot be made
// to send them on demand, and x/net/http2 would add a dependency.

const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8

	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4

	errCodeCancel = 0x8
)

type rawH2 struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

type h2frame struct {
	typ, flags byte
	stream     uint32
	payload    []byte
}

func dialRawH2(address string) (*rawH2, error) {
	c, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		return nil, err
	}
	h := &rawH2{conn: c, r: bufio.NewReader(c), w: bufio.NewWriterSize(c, 64<<10)}
	h.w.WriteString("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	h.frame(frameSettings, 0, 0, nil)
	return h, h.w.Flush()
}

func (h *rawH2) close() { h.conn.Close() }

func (h *rawH2) frame(typ, flags byte, stream uint32, payload []byte) {
	var hdr [9]byte
	hdr[0], hdr[1], hdr[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	hdr[3], hdr[4] = typ, flags
	binary.BigEndian.PutUint32(hdr[5:], stream&0x7fffffff)
	h.w.Write(hdr[:])
	h.w.Write(payload)
}

// get queues a complete GET request (HEADERS with END_STREAM) on stream.
func (h *rawH2) get(stream uint32, authority, path string) {
	h.frame(frameHeaders, flagEndHeaders|flagEndStream, stream, hpackGET(authority, path))
}

func (h *rawH2) rst(stream uint32, code uint32) {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], code)
	h.frame(frameRSTStream, 0, stream, p[:])
}

func (h *rawH2) read() (h2frame, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(h.r, hdr[:]); err != nil {
		return h2frame{}, err
	}
	f := h2frame{
		typ:    hdr[3],
		flags:  hdr[4],
		stream: binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff,
	}
	f.payload = make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))
	_, err := io.ReadFull(h.r, f.payload)
	return f, err
}

// awaitResponse reads frames until stream's response ends. It acks the
// peer's SETTINGS and PINGs, and turns a GOAWAY into an error naming its code.
func (h *rawH2) awaitResponse(stream uint32, timeout time.Duration) (gotHeaders bool, err error) {
	h.conn.SetReadDeadline(time.Now().Add(timeout))
	defer h.conn.SetReadDeadline(time.Time{})
	for {
		f, err := h.read()
		if err != nil {
			return gotHeaders, fmt.Errorf("waiting for stream %d: %w", stream, err)
		}
		switch f.typ {
		case frameGoAway:
			code, msg := uint32(0), ""
			if len(f.payload) >= 8 {
				code = binary.BigEndian.Uint32(f.payload[4:8])
				msg = string(f.payload[8:])
			}
			return gotHeaders, fmt.Errorf("GOAWAY %s %q", h2ErrName(code), msg)
		case frameSettings:
			if f.flags&flagAck == 0 {
				h.frame(frameSettings, flagAck, 0, nil)
				h.w.Flush()
			}
		case framePing:
			if f.flags&flagAck == 0 {
				h.frame(framePing, flagAck, 0, f.payload)
				h.w.Flush()
			}
		case frameRSTStream:
			if f.stream == stream {
				return gotHeaders, fmt.Errorf("stream %d reset by peer", stream)
			}
		case frameHeaders, frameData:
			if f.stream != stream {
				continue
			}
			if f.typ == frameHeaders {
				gotHeaders = true
			}
			if f.flags&flagEndStream != 0 {
				return gotHeaders, nil
			}
		}
	}
}

func h2ErrName(code uint32) string {
	names := []string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
		"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
		"COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}
	if int(code) < len(names) {
		return names[code]
	}
	return fmt.Sprintf("0x%x", code)
}

// hpackGET encodes a GET request using only the static table and literals
// without indexing, so no dynamic-table state is needed (RFC 7541).
func hpackGET(authority, path string) []byte {
	b := []byte{0x82, 0x86} // :method GET, :scheme http
	if path == "/" {
		b = append(b, 0x84)
	} else {
		b = hpackLiteral(b, 4, path) // :path
	}
	return hpackLiteral(b, 1, authority) // :authority
}

func hpackLiteral(b []byte, nameIndex int, value string) []byte {
	b = hpackInt(b, 0x00, 4, nameIndex)
	b = hpackInt(b, 0x00, 7, len(value))
	return append(b, value...)
}

func hpackInt(b []byte, first byte, prefix uint, v int) []byte {
	limit := 1<<prefix - 1
	if v < limit {
		return append(b, first|byte(v))
	}
	b = append(b, first|byte(limit))
	for v -= limit; v >= 128; v >>= 7 {
		b = append(b, byte(v&0x7f|0x80))
	}
	return append(b, byte(v))
}
