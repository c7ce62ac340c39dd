// Package domain holds the token reward rules of the royalty saga (DESIGN
// §5): which tier a counted play is in, the burn curve, and the one ledger
// transaction that rewards a play. Pure: no I/O, no clock.
//
// # Tiers
//
// A play whose song play number is at most Rules.DiscoveryMaxPlayNumber
// (10,000) is in the discovery tier: mint 1 FAN each to the listener (the
// discoverer), the serving node and the artist's discovery escrow. Later
// plays are in the standard tier: mint 1 FAN to the artist side, split by the
// song's royalty splits with money.Allocate, and 1 FAN to the serving node;
// the listener burns b(S) (see [Burn]), S = supply before the play.
//
// # The transaction
//
// [Plan] builds the postings of the reward transaction, whose id is the play
// id, in a fixed order (discovery: listener, node, escrow; standard: payees
// in split order, node, burn), so a replay asks the ledger for the same
// bytes. Mints are mint → account postings of kind ROYALTY, the burn is
// wallet:<listener>:FAN → burn of kind BURN. Account ids follow the ledger's
// scheme (services/accounts/domain: WalletID, EscrowID, Mint, Burn).
//
// Plan refuses the reward, as the ledger would, in the ledger's order:
//
//   - BURN_UNAFFORDABLE when the listener's available FAN plus whatever the
//     transaction itself credits to the listener's wallet is below the burn
//     (the ledger checks balances after the whole transaction);
//   - SUPPLY_CAP when the transaction raises the supply (minted > burned)
//     and supply + minted − burned exceeds the cap. A transaction whose burn
//     outweighs its mints is never refused for the cap, exactly like the
//     ledger's check.
//
// The ledger stays the authority: Plan only spares it requests it would
// reject, and lets the saga record RewardRefused with the burn owed.
package domain
