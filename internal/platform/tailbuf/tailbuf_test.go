package tailbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fanfare/fanfare/internal/platform/tailbuf"
)

// It keeps exactly the last bytes written, from concurrent writers.
func TestBufferKeepsTheTail(t *testing.T) {
	b := tailbuf.New(10)
	fmt.Fprint(b, "hello ")
	if b.String() != "hello " {
		t.Fatalf("%q", b.String())
	}
	fmt.Fprint(b, "world, again")
	if b.String() != "rld, again" {
		t.Fatalf("kept %q, want the last 10 bytes", b.String())
	}
	big := tailbuf.New(1 << 10)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				fmt.Fprint(big, "xxxxxxxx")
			}
		})
	}
	wg.Wait()
	if s := big.String(); len(s) != 1<<10 || strings.Trim(s, "x") != "" {
		t.Fatalf("kept %d bytes", len(s))
	}
}
