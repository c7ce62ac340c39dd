package cluster

import "testing"

// A part binds its port only when it starts, so freeAddr must never hand
// out a port twice: 600 draws from the ~22,000 ports below the ephemeral
// range would all but surely repeat one if it only checked that the port
// was free at the time.
func TestFreeAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 600 {
		addr, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("freeAddr handed out %s twice", addr)
		}
		seen[addr] = true
	}
}
