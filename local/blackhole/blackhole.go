// Package blackhole gives tests an address that accepts TCP connections
// and never answers on them: a broker or endpoint behind a route that
// drops its replies, which clients only give up on at their deadline
// (unlike a refused connection, which fails at once).
package blackhole

import (
	"net"
	"sync"
	"testing"
)

// Addr listens on a loopback port, accepts every connection and never
// writes to it. Everything is closed when t ends.
func Addr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
