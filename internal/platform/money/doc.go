// Package money is Fanfare's exact money, written once for the whole system
// (DESIGN §1 rule 6).
//
// An [Amount] is an integer number of minor units of one [Asset]; an asset has
// a fixed scale (USD: 2 decimals, FAN: 8). There is no float anywhere.
// Strings enter through [Parse] (or [Assets.Parse]) with precise errors and
// leave through [Amount.Text]; shopspring/decimal values cross the edge only
// through [FromDecimal] and [Amount.Decimal].
//
// The asset table is a value ([Assets]), not a hidden global: [DefaultAssets]
// returns the built-in table and policy may pass another one around.
//
// [Allocate] is the one split function of the system: largest remainder with
// a deterministic tie-break (larger remainder first, then payee id), so the
// parts always sum to the whole and a replay gives the same cents.
package money
