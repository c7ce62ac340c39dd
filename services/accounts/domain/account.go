package domain

import (
	"strings"

	"github.com/fanfare/fanfare/internal/platform/money"
)

// AccountKind is the kind of a ledger account; the values equal those of
// eventsv1.AccountKind.
type AccountKind uint8

const (
	// AccountUnspecified is no kind.
	AccountUnspecified AccountKind = iota
	// AccountWallet is a user's wallet: wallet:<identity>:<ASSET>.
	AccountWallet
	// AccountEscrow is an escrow: escrow:<purpose>:<ref>:<ASSET>.
	AccountEscrow
	// AccountExternal is external:<rail>, where money enters and leaves.
	AccountExternal
	// AccountMint is token issuance (token books only); only debited.
	AccountMint
	// AccountBurn is the token sink (token books only); only credited.
	AccountBurn
	// AccountPromotions is the source of promotional credit.
	AccountPromotions
)

// System reports whether the kind is a system kind (external, mint, burn,
// promotions).
func (k AccountKind) System() bool { return k >= AccountExternal && k <= AccountPromotions }

// String returns the kind's name as used in account ids.
func (k AccountKind) String() string {
	switch k {
	case AccountWallet:
		return "wallet"
	case AccountEscrow:
		return "escrow"
	case AccountExternal:
		return "external"
	case AccountMint:
		return "mint"
	case AccountBurn:
		return "burn"
	case AccountPromotions:
		return "promotions"
	}
	return "unspecified"
}

// The system account ids without parameters.
const (
	Mint       = "mint"
	Burn       = "burn"
	Promotions = "promotions"
)

// Bounds of account ids.
const (
	// MaxSegment is the longest identity, purpose, ref or rail.
	MaxSegment = 128
)

// WalletID returns the id of identity's wallet for asset:
// wallet:<identity>:<ASSET>. It does not validate; [ParseAccountID] does.
func WalletID(identity, asset string) string { return "wallet:" + identity + ":" + asset }

// EscrowID returns escrow:<purpose>:<ref>:<ASSET>, e.g.
// EscrowID("discovery", artistID, "FAN").
func EscrowID(purpose, ref, asset string) string {
	return "escrow:" + purpose + ":" + ref + ":" + asset
}

// ExternalID returns external:<rail>, e.g. ExternalID("bank").
func ExternalID(rail string) string { return "external:" + rail }

// AccountID is a parsed account id.
type AccountID struct {
	// ID is the text form.
	ID   string
	Kind AccountKind
	// Owner is the wallet's identity, the escrow's ref or the external rail.
	Owner string
	// Purpose is the escrow's purpose ("discovery", "campaign", …).
	Purpose string
	// Asset is the asset code of a wallet or escrow; empty for system
	// accounts, which exist once per book.
	Asset string
}

// User reports whether the account is a user account (wallet or escrow).
func (a AccountID) User() bool { return a.Kind == AccountWallet || a.Kind == AccountEscrow }

// ParseAccountID parses an account id (see the package doc for the scheme).
// It returns a [*Rejection] wrapping [ErrInvalidAccountID] that says what is
// wrong.
func ParseAccountID(s string) (AccountID, error) {
	a, r := parseAccountID(s)
	if r != nil {
		return AccountID{}, r
	}
	return a, nil
}

func parseAccountID(s string) (AccountID, *Rejection) {
	bad := func(why string) (AccountID, *Rejection) {
		return AccountID{}, reject(ErrInvalidAccountID, clip(s), "%q %s", clip(s), why)
	}
	switch s {
	case Mint:
		return AccountID{ID: s, Kind: AccountMint}, nil
	case Burn:
		return AccountID{ID: s, Kind: AccountBurn}, nil
	case Promotions:
		return AccountID{ID: s, Kind: AccountPromotions}, nil
	case "":
		return bad("is empty")
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return bad("is not wallet:<identity>:<ASSET>, escrow:<purpose>:<ref>:<ASSET>, external:<rail>, mint, burn or promotions")
	}
	var segs [4]string
	n := 0
	for {
		seg, tail, more := strings.Cut(rest, ":")
		if n == len(segs) {
			return bad("has too many parts")
		}
		segs[n] = seg
		n++
		if !more {
			break
		}
		rest = tail
	}
	checkSegs := func(what ...string) (AccountID, *Rejection) {
		for i := range what {
			if why := checkSegment(segs[i]); why != "" {
				return bad("has an invalid " + what[i] + ": " + why)
			}
		}
		return AccountID{}, nil
	}
	switch kind {
	case "wallet":
		if n != 2 {
			return bad("is not wallet:<identity>:<ASSET>")
		}
		if _, r := checkSegs("identity"); r != nil {
			return AccountID{}, r
		}
		if !money.ValidCode(segs[1]) {
			return bad("has an invalid asset code")
		}
		return AccountID{ID: s, Kind: AccountWallet, Owner: segs[0], Asset: segs[1]}, nil
	case "escrow":
		if n != 3 {
			return bad("is not escrow:<purpose>:<ref>:<ASSET>")
		}
		if _, r := checkSegs("purpose", "ref"); r != nil {
			return AccountID{}, r
		}
		if !money.ValidCode(segs[2]) {
			return bad("has an invalid asset code")
		}
		return AccountID{ID: s, Kind: AccountEscrow, Purpose: segs[0], Owner: segs[1], Asset: segs[2]}, nil
	case "external":
		if n != 1 {
			return bad("is not external:<rail>")
		}
		if _, r := checkSegs("rail"); r != nil {
			return AccountID{}, r
		}
		return AccountID{ID: s, Kind: AccountExternal, Owner: segs[0]}, nil
	}
	return bad("has an unknown kind (want wallet, escrow, external, mint, burn or promotions)")
}

// checkSegment returns why seg is not a valid id segment, or "".
func checkSegment(seg string) string {
	if seg == "" {
		return "empty"
	}
	if len(seg) > MaxSegment {
		return "longer than 128 characters"
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "characters other than A-Z a-z 0-9 . _ -"
		}
	}
	return ""
}

// clip shortens long user input in messages.
func clip(s string) string {
	const max = 96
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
