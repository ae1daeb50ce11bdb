package blackhole

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// A connection is accepted, and a read waits for an answer that never
// comes: it ends only at the reader's deadline.
func TestAcceptsAndNeverAnswers(t *testing.T) {
	c, err := net.Dial("tcp", Addr(t))
	if err != nil {
		t.Fatalf("dial: %v, want the connection accepted", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v; want no answer until the deadline", n, err)
	}
}
