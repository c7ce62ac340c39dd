// Package domain is the ledger of the accounts service (DESIGN §2) as a pure,
// in-memory state machine: no clock, no I/O, no persistence. The book writer
// in the app layer feeds it requests in order, appends its outcomes as one
// BookBatchAppended event per batch, and recovers it from a snapshot plus the
// tail of its stream.
//
// # Books and accounts
//
// There is one [Book] per asset; a book has a single writer and is not safe
// for concurrent use. Account ids are text (see [ParseAccountID]):
//
//	wallet:<identity>:<ASSET>          a user's wallet, one per asset per identity
//	escrow:<purpose>:<ref>:<ASSET>     an escrow, e.g. escrow:discovery:<artist>:FAN,
//	                                   escrow:campaign:<campaign>:USD
//	external:<rail>                    money entering or leaving through a rail
//	mint, burn                         token issuance and sink (token books only)
//	promotions                         source of promotional credit
//
// Identity, purpose, ref and rail are 1–128 characters from [A-Za-z0-9._-];
// ASSET is an asset code. Wallets and escrows ("user accounts") name their
// asset, so their ids are unique across books, and must be opened with
// [Book.Open] before use; system accounts have no asset suffix, exist in every
// book that allows them, and need no opening.
//
// User accounts never go below zero available. System accounts may go
// negative, except in a token book (an asset with a supply cap in the policy,
// i.e. FAN): there only mint may go negative, so every token in circulation
// was minted and the cap bounds them all. mint may only be debited and burn
// only credited.
//
// # Requests
//
// [Book.Apply] takes a [Request]: postings plus hold operations, applied all
// or nothing as one atomic step (balance checks are on the state after the
// whole request). Every request carries an id. The book remembers the outcome
// of every request it decided against its state — committed, or rejected for
// insufficient funds, supply cap, an unknown account, a hold in the wrong
// state, or an overflow — so repeating the id with the same content returns
// that first outcome and moves nothing, and each id gets exactly one outcome.
// The same id with different content is rejected as id_conflict. Malformed
// requests (zero amount, self posting, too many postings, wrong asset, bad
// ids…) are rejected before that and are not remembered: they fail the same
// way on every retry, and a corrected request may reuse the id.
//
// No rejection changes a balance, a hold, the supply or the sequence:
// [Book.LedgerSnapshot] stays byte-identical. The full [Book.Snapshot]
// additionally holds the remembered outcomes.
//
// # Holds
//
// A hold reserves funds on a user account: available = balance − open holds.
// It is later captured (the amount, or part of it, posts to a credit account;
// the rest is released) or voided. A hold may carry an expiry; the book reads
// no clock, so [Book.ExpireHolds] voids expired holds when the writer passes
// it the time. Hold ids are unique for the life of the book.
//
// # Supply and policy
//
// Supply = minted − burned: debits of mint minus credits of burn. A request
// that raises supply past the cap in force is rejected as supply_cap. The cap,
// the welcome credit, the asset table and the per-request bounds are a
// versioned [Policy]; each outcome records the policy version it was decided
// under.
package domain
