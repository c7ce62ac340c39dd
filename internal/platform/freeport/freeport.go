// Package freeport gives out loopback addresses for servers that bind
// later — a child process, Kratos, a part restarted on its old address —
// the one way every harness and test picks them.
package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// handedOut holds every port Addr has returned in this process: a server
// binds its port only when it starts, so a port found free now may
// already be promised to one not yet started (a CI run once gave two
// cluster parts the same one).
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Addr is a loopback address with a port that is free now, below the
// kernel's ephemeral range, and never one it returned before. Below the
// range, because a server keeps its address across restarts and a port
// from the range could meanwhile become the local end of some outgoing
// connection, failing the restart with "address in use".
func Addr() (string, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const from = 10000
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		addr := "127.0.0.1:0" // no room below the range: any free port
		if low > from+1000 {
			addr = "127.0.0.1:" + strconv.Itoa(from+rand.IntN(low-from))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return "127.0.0.1:" + strconv.Itoa(port), nil
		}
	}
	return "", errors.New("freeport: no free port below the ephemeral range")
}
