package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestExpectContinueFormPost: a client that sends Expect: 100-continue
// with a 1 MiB form POST gets 100 Continue before it sends the body, and
// then Tomcat's echo of the whole body, on the cleartext and the TLS
// listener.
func TestExpectContinueFormPost(t *testing.T) {
	s := startSluice(t, upstream{Protocol: "h2c", Ports: []int{tc.A, tc.B}}.yaml()+tlsEdge(t, false))
	form := []byte("field=" + strings.Repeat("v", 1<<20-len("field=")))
	dials := []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"cleartext", func() (net.Conn, error) { return net.Dial("tcp", s.Listen) }},
		{"tls", func() (net.Conn, error) {
			return tls.Dial("tcp", s.TLS, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		}},
	}
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			c, err := d.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			fmt.Fprintf(c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
				"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(form))
			br := bufio.NewReader(c)
			interim, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("waiting for 100 Continue: %v", err)
			}
			if interim.StatusCode != http.StatusContinue {
				t.Fatalf("status %d before the body was sent, want 100", interim.StatusCode)
			}
			if _, err := c.Write(form); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil || res.StatusCode != http.StatusOK || !bytes.Equal(got, form) {
				t.Fatalf("status %d, %d bytes echoed (%v), want 200 and the %d sent", res.StatusCode, len(got), err, len(form))
			}
		})
	}
}
