package freeport

import (
	"net"
	"testing"
)

// A server binds its port only when it starts, so Addr must never hand
// out a port twice: 600 draws from the ~22,000 ports below the ephemeral
// range would all but surely repeat one if it only checked that the port
// was free at the time. Each must also be free to bind.
func TestAddrNeverRepeatsAndIsFree(t *testing.T) {
	seen := map[string]bool{}
	var last string
	for range 600 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("Addr handed out %s twice", addr)
		}
		seen[addr], last = true, addr
	}
	l, err := net.Listen("tcp", last)
	if err != nil {
		t.Fatalf("%s was handed out but cannot be bound: %v", last, err)
	}
	l.Close()
}
