package bench

import (
	"context"
	"testing"
	"time"
)

// The purchases scenario runs end to end on the embedded stack, completes
// purchases with 4-hop chains and finds the money where it should be.
func TestPurchasesScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an event store, a broker and four services")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, "purchases", Options{Duration: 2 * time.Second, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pass {
		t.Fatalf("failures: %v", res.Failures)
	}
	p := res.Figures["purchases"].(map[string]any)
	m := res.Figures["money"].(map[string]any)
	if p["completed"].(int) == 0 || p["failed"].(int64) != 0 || res.Figures["hops"] != purchaseHops {
		t.Fatalf("figures: %v", res.Figures)
	}
	if m["book_sum"].(int64) != 0 || m["wallets_wrong"].(int) != 0 || m["purchasers_debited"].(int64) != m["payees_and_distributors_credited"].(int64) {
		t.Fatalf("money: %v", m)
	}
	// Every purchase pays 1.99 + 10/5/2.5/1% fees (0.20 + 0.10 + 0.05 + 0.02).
	if got, want := m["purchasers_debited"].(int64), int64(m["purchases_checked"].(int))*236; got != want {
		t.Fatalf("debited %d, want %d", got, want)
	}
}
