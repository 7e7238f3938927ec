package h1

import (
	"errors"
	"strings"
	"testing"
)

// decodeAll feeds in to a ChunkDecoder step bytes at a time and returns
// the body, the trailers, the bytes left after the body, and any error.
func decodeAll(in string, step int) (body, trailers, rest string, err error) {
	var d ChunkDecoder
	var b strings.Builder
	p := []byte(in)
	for len(p) > 0 && !d.Done() {
		k := min(step, len(p))
		piece := p[:k]
		for len(piece) > 0 && !d.Done() {
			data, n, err := d.Feed(piece)
			if err != nil {
				return b.String(), "", "", err
			}
			b.Write(data)
			piece = piece[n:]
		}
		p = p[k-len(piece):]
	}
	if !d.Done() {
		return b.String(), "", "", ErrIncomplete
	}
	return b.String(), string(d.Trailers()), string(p), nil
}

func TestChunkDecoder(t *testing.T) {
	tests := []struct {
		name           string
		in             string
		body, trailers string
		want           error
	}{
		{"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT", "hello world", "", nil},
		{"upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", "", nil},
		{"extensions", "5;a=b;c;d=\"x \\\" y\" \r\nhello\r\n0 ; last\r\n\r\n", "hello", "", nil},
		{"trailers", "1\r\nx\r\n0\r\nX-Sum: 1\r\nX-More: two\r\n\r\n", "x", "X-Sum: 1\r\nX-More: two\r\n", nil},
		{"leading zeros", "0005\r\nhello\r\n0\r\n\r\n", "hello", "", nil},
		{"not hex", "zz\r\n\r\n", "", "", ErrChunkSize},
		{"empty size", "\r\nhello\r\n", "", "", ErrChunkSize},
		{"sign", "+5\r\nhello\r\n0\r\n\r\n", "", "", ErrChunkSize},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", "", "", ErrChunkExtension},
		{"16 hex digits", "1000000000000000\r\n", "", "", ErrChunkSize},
		{"space after size", "5 \r\nhello\r\n0\r\n\r\n", "hello", "", nil},
		{"space inside size", "5 5\r\nhello\r\n0\r\n\r\n", "", "", ErrChunkExtension},
		{"bad extension", "5;=x\r\nhello\r\n0\r\n\r\n", "", "", ErrChunkExtension},
		{"unterminated quoted", "5;a=\"x\r\nhello\r\n0\r\n\r\n", "", "", ErrChunkExtension},
		{"extension flood", strings.Repeat("1;"+strings.Repeat("a", 1000)+"\r\nx\r\n", 5) + "0\r\n\r\n", "xxxx", "", ErrChunkExtension},
		{"line too long", "5;a=" + strings.Repeat("b", 5000) + "\r\n", "", "", ErrChunkLineTooLong},
		{"data without CRLF", "3\r\nabcX0\r\n\r\n", "abc", "", ErrChunkCRLF},
		{"data, LF only", "3\r\nabc\n0\r\n\r\n", "abc", "", ErrChunkCRLF},
		{"bare LF size line", "3\nabc\r\n0\r\n\r\n", "", "", ErrChunkBareLF},
		{"bare LF last chunk", "0\n\r\n", "", "", ErrChunkBareLF},
		{"obs-fold trailer", "0\r\nX: a\r\n b\r\n\r\n", "", "", ErrTrailer},
		{"NUL in trailer", "0\r\nX: a\x00\r\n\r\n", "", "", ErrTrailer},
		{"bare LF trailer", "0\r\nX: a\n\r\n", "", "", ErrTrailer},
		{"trailer flood", "0\r\n" + strings.Repeat("X: aaaaaaaaaaaaaaaa\r\n", 500) + "\r\n", "", "", ErrTrailer},
		{"incomplete", "5\r\nhel", "hel", "", ErrIncomplete},
	}
	for _, tt := range tests {
		for _, step := range []int{1, 2, 7, 1 << 20} {
			body, trailers, _, err := decodeAll(tt.in, step)
			if !errors.Is(err, tt.want) {
				t.Errorf("%s, step %d: error %v, want %v", tt.name, step, err, tt.want)
				continue
			}
			if body != tt.body || trailers != tt.trailers {
				t.Errorf("%s, step %d: body %q trailers %q, want %q %q", tt.name, step, body, trailers, tt.body, tt.trailers)
			}
		}
	}
}

// TestChunkDecoderStopsAtTheEnd: what follows the body (the next pipelined
// request) is not consumed.
func TestChunkDecoderStopsAtTheEnd(t *testing.T) {
	for _, step := range []int{1, 3, 1 << 20} {
		_, _, rest, err := decodeAll("2\r\nab\r\n0\r\n\r\nGET / HTTP/1.1\r\n", step)
		if err != nil || !strings.HasPrefix(rest, "GET / HTTP/1.1\r\n") && step >= len("2\r\nab\r\n0\r\n\r\nGET / HTTP/1.1\r\n") {
			t.Errorf("step %d: rest %q, %v", step, rest, err)
		}
	}
	var d ChunkDecoder
	in := []byte("0\r\n\r\nGET")
	total := 0
	for !d.Done() {
		_, n, err := d.Feed(in[total:])
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 5 {
		t.Errorf("consumed %d bytes, want the 5 of the body", total)
	}
}
