package domain_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/fanfare/fanfare/services/accounts/domain"
)

const benchWallets = 1000

func benchBook(b *testing.B) (*domain.Book, []string) {
	b.Helper()
	book := newBook(b, usd)
	ids := make([]string, benchWallets)
	for i := range ids {
		ids[i] = wallet(fmt.Sprintf("id-%04d", i), usd)
		openAll(b, book, ids[i])
		o := book.Apply(tx("fund-"+ids[i], usd, post(bank, ids[i], 1_000_000_000_000)))
		if !o.Committed() {
			b.Fatal(o.Err)
		}
	}
	return book, ids
}

// benchIDs fills ids with unique request ids outside the timer, in chunks, so
// the measurement covers Apply only.
type benchIDs struct {
	chunk []string
}

func (g *benchIDs) id(b *testing.B, i int) string {
	if i%len(g.chunk) == 0 {
		b.StopTimer()
		for j := range g.chunk {
			g.chunk[j] = "req-" + strconv.Itoa(i+j)
		}
		b.StartTimer()
	}
	return g.chunk[i%len(g.chunk)]
}

// BenchmarkApply measures one request through the book: fingerprint,
// idempotency lookup, validation, balance checks and commit (including the
// growth of the remembered-outcome map).
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("postings=%d", n), func(b *testing.B) {
			book, ids := benchBook(b)
			g := &benchIDs{chunk: make([]string, 1<<16)}
			req := domain.Request{Asset: usd, Kind: domain.KindTip, Postings: make([]domain.Posting, n)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req.ID = g.id(b, i)
				for k := range req.Postings {
					x := (i*7 + k*13) % benchWallets
					y := (x + 1 + k) % benchWallets
					req.Postings[k] = domain.Posting{Debit: ids[x], Credit: ids[y], Amount: 1 + int64(k)}
				}
				if o := book.Apply(req); !o.Committed() {
					b.Fatal(o.Err)
				}
			}
			b.StopTimer()
			if s := sumBalances(book); s != 0 {
				b.Fatalf("balances sum to %d", s)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "postings/s")
		})
	}
}

// BenchmarkApplyHold measures a two-phase transfer: a place request and a
// capture request.
func BenchmarkApplyHold(b *testing.B) {
	book, ids := benchBook(b)
	g := &benchIDs{chunk: make([]string, 1<<16)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := g.id(b, i)
		x := i % benchWallets
		place := domain.Request{ID: id, Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: id, Account: ids[x], Amount: 10}}}
		capture := domain.Request{ID: id + "/c", Asset: usd, Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{{Kind: domain.HoldCapture, HoldID: id, Credit: bank}}}
		if o := book.Apply(place); !o.Committed() {
			b.Fatal(o.Err)
		}
		if o := book.Apply(capture); !o.Committed() {
			b.Fatal(o.Err)
		}
	}
}

// BenchmarkApplyRepeat measures a repeated request (idempotent replay).
func BenchmarkApplyRepeat(b *testing.B) {
	book, ids := benchBook(b)
	req := tx("once", usd, post(ids[0], ids[1], 1))
	book.Apply(req)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if o := book.Apply(req); !o.Replayed {
			b.Fatal("not replayed")
		}
	}
}

// BenchmarkSnapshot measures Snapshot and Restore of a book with 1,000
// wallets and 100,000 remembered outcomes.
func BenchmarkSnapshot(b *testing.B) {
	book, ids := benchBook(b)
	for i := range 100_000 {
		book.Apply(tx("s-"+strconv.Itoa(i), usd, post(ids[i%benchWallets], ids[(i+1)%benchWallets], 1)))
	}
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			_ = book.Snapshot()
		}
		b.ReportMetric(float64(len(book.Snapshot())), "bytes")
	})
	snap := book.Snapshot()
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			if _, err := domain.Restore(snap); err != nil {
				b.Fatal(err)
			}
		}
	})
}
