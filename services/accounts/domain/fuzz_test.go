package domain_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fanfare/fanfare/services/accounts/domain"
)

// FuzzApplyRequest fuzzes request validation: one arbitrary request against a
// small book, judged by the model (commit iff no problem, rejection only for a
// problem the model sees, nothing changes on rejection), then repeated.
func FuzzApplyRequest(f *testing.F) {
	f.Add("r1", "USD", "external:bank", "wallet:u01:USD", int64(500), int32(6), uint8(0), "", "", int64(0), int64(0), "")
	f.Add("r2", "USD", "wallet:u00:USD", "wallet:u00:USD", int64(1), int32(6), uint8(1), "h1", "wallet:u00:USD", int64(5), int64(0), "")
	f.Add("r3", "FAN", "mint", "wallet:u02:USD", int64(-1), int32(0), uint8(2), "h-fix", "", int64(3), int64(0), "external:bank")
	f.Add("", "EUR", "wallet:", "burn", int64(0), int32(99), uint8(3), "h-fix", "x", int64(0), int64(1), "mint")
	f.Add("r5", "USD", "wallet:u00:USD", "wallet:u01:USD", int64(100_000), int32(6), uint8(1), "h-new", "wallet:u01:USD", int64(7), int64(1_900_000_000_000_000_000), "")
	f.Fuzz(func(t *testing.T, id, asset, debit, credit string, amount int64, kind int32, holdKind uint8, holdID, holdAccount string, holdAmount, expiry int64, holdCredit string) {
		h := newHarness(t, randSource{rand.New(rand.NewPCG(1, 1))})
		bs := h.books[0] // USD
		// A little state: u00 has 1,000.00 with an open hold h-fix of 10.00.
		h.apply(bs, domain.Request{ID: "setup-1", Asset: "USD", Kind: domain.KindDeposit, Postings: []domain.Posting{{Debit: "external:bank", Credit: "wallet:u00:USD", Amount: 100_000}}}, "setup")
		h.apply(bs, domain.Request{ID: "setup-2", Asset: "USD", Kind: domain.KindWithdrawal, Holds: []domain.HoldOp{{Kind: domain.HoldPlace, HoldID: "h-fix", Account: "wallet:u00:USD", Amount: 1000}}}, "setup")
		if bs.book.Sequence() != 2 {
			t.Fatal("setup failed")
		}
		req := domain.Request{ID: id, Asset: asset, Kind: domain.PostingKind(kind)}
		if debit != "" || credit != "" || amount != 0 {
			req.Postings = append(req.Postings, domain.Posting{Debit: debit, Credit: credit, Amount: amount})
		}
		if holdKind != 0 {
			op := domain.HoldOp{Kind: domain.HoldOpKind(holdKind % 5), HoldID: holdID, Account: holdAccount, Amount: holdAmount, Credit: holdCredit}
			if expiry != 0 {
				op.ExpiresAt = time.Unix(0, expiry)
			}
			req.Holds = append(req.Holds, op)
		}
		h.apply(bs, req, "fuzz")
		h.check(bs)
		h.apply(bs, req, "fuzz repeat")
		h.check(bs)
		h.restore(bs)
		h.finish()
	})
}

// FuzzRestore feeds arbitrary bytes to Restore: it never panics, and what it
// accepts is canonical and satisfies the invariants. The input is the body of
// a snapshot; the harness appends the right checksum so the fuzzer reaches
// the decoder instead of stopping at the CRC.
func FuzzRestore(f *testing.F) {
	b := usdFixture(f)
	mustReject(f, b, tx("rej", usd, post(carol, bob, 1)), domain.ErrInsufficientFunds)
	body := func(s []byte) []byte { return s[:len(s)-4] }
	f.Add(body(b.Snapshot()))
	f.Add(body(b.LedgerSnapshot()))
	f.Add(body(fanFixture(f).Snapshot()))
	f.Add([]byte("fanfare.book"))
	f.Fuzz(func(t *testing.T, body []byte) {
		data := binary.LittleEndian.AppendUint32(slices.Clone(body), crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
		c, err := domain.Restore(data)
		if err != nil {
			if !errors.Is(err, domain.ErrCorruptSnapshot) {
				t.Fatalf("error %v is not ErrCorruptSnapshot", err)
			}
			return
		}
		if !bytes.Equal(c.Snapshot(), data) && !bytes.Equal(c.LedgerSnapshot(), data) {
			t.Fatal("accepted bytes are not canonical")
		}
		if err := invariants(c); err != nil {
			t.Fatalf("restored book breaks an invariant: %v", err)
		}
	})
}
