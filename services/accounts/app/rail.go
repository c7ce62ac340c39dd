package app

import (
	"fmt"

	"github.com/fanfare/fanfare/internal/platform/money"
)

// Rail is a payment rail money enters and leaves by (DESIGN §2). A rail
// tells the payer how to pay a deposit; finance confirms receipt and
// settles payouts, so a rail never moves ledger money by itself.
type Rail interface {
	Name() string
	// DepositInstructions says how to pay deposit id, and the reference
	// the payer must quote.
	DepositInstructions(depositID string, amount money.Amount) (instructions, reference string)
}

// ManualBank is the built-in rail: a bank transfer that finance matches by
// reference and confirms by hand.
type ManualBank struct {
	// Account is where payers send money (an IBAN, say).
	Account string
}

func (ManualBank) Name() string { return "bank" }

func (b ManualBank) DepositInstructions(depositID string, amount money.Amount) (string, string) {
	ref := "FANFARE-" + depositID
	return fmt.Sprintf("Transfer %s to %s quoting reference %s; finance credits it once it arrives.", amount, b.Account, ref), ref
}
