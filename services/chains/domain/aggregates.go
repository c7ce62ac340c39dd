package domain

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"google.golang.org/protobuf/proto"
)

// Distributor is the aggregate of stream distributor-<id>: the one key its
// hops are signed with.
type Distributor struct {
	events.Recorder
	ID  string
	Key ed25519.PublicKey
}

// NewDistributor is a repository factory.
func NewDistributor(id string) *Distributor { return &Distributor{ID: id} }

// RegisterKey records the distributor's key; the same key again is a
// no-op (false), another key is refused: tokens already passed on were
// signed with the first.
func (d *Distributor) RegisterKey(key []byte) (bool, error) {
	if len(key) != ed25519.PublicKeySize {
		return false, apperr.New(apperr.InvalidInput, "public_key must be an Ed25519 key (%d bytes), got %d bytes", ed25519.PublicKeySize, len(key))
	}
	if d.Key != nil {
		if bytes.Equal(d.Key, key) {
			return false, nil
		}
		return false, apperr.New(apperr.Conflict, "distributor %s already has another key", d.ID)
	}
	e := &eventsv1.DistributorKeyRegistered{DistributorId: d.ID, PublicKey: key}
	d.Record(e)
	return true, d.Apply(e)
}

// Apply evolves the distributor by one event.
func (d *Distributor) Apply(e proto.Message) error {
	k, ok := e.(*eventsv1.DistributorKeyRegistered)
	if !ok {
		return fmt.Errorf("distributor %s: unexpected event %T", d.ID, e)
	}
	d.Key = ed25519.PublicKey(k.PublicKey)
	return nil
}

// Referral is the aggregate of stream referral-<token id>: one issued root.
type Referral struct {
	events.Recorder
	ID     string
	Issued *eventsv1.RootTokenIssued
}

// NewReferral is a repository factory.
func NewReferral(id string) *Referral { return &Referral{ID: id} }

// Issue records the root token once; a repeat for the same song and
// distributor is a no-op, anything else a conflict.
func (r *Referral) Issue(songID, distributor string, token []byte) error {
	if r.Issued != nil {
		if r.Issued.SongId == songID && r.Issued.IssuedTo == distributor {
			return nil
		}
		return apperr.New(apperr.Conflict, "request id already issued a token for song %s", r.Issued.SongId)
	}
	e := &eventsv1.RootTokenIssued{TokenId: r.ID, SongId: songID, IssuedTo: distributor, Token: token}
	r.Record(e)
	return r.Apply(e)
}

// Apply evolves the referral by one event.
func (r *Referral) Apply(e proto.Message) error {
	t, ok := e.(*eventsv1.RootTokenIssued)
	if !ok {
		return fmt.Errorf("referral %s: unexpected event %T", r.ID, e)
	}
	r.Issued = t
	return nil
}

// PurchaseChain is the aggregate of stream purchasechain-<purchase id>: the
// one answer to a purchase's referral token.
type PurchaseChain struct {
	events.Recorder
	ID      string
	Decided bool
}

// NewPurchaseChain is a repository factory.
func NewPurchaseChain(id string) *PurchaseChain { return &PurchaseChain{ID: id} }

// Decide records the answer once: the chain, or the rejection when err is
// a token error. Later calls are no-ops.
func (p *PurchaseChain) Decide(req *eventsv1.PurchaseRequested, chain Chain, err error) error {
	if p.Decided {
		return nil
	}
	var e proto.Message
	if err != nil {
		reason := eventsv1.DistributorChainRejected_Reason(eventsv1.DistributorChainRejected_Reason_value[string(ReasonOf(err))])
		var tokenErr *Error
		if !errors.As(err, &tokenErr) {
			return err // not about the token (e.g. the store): retry
		}
		if reason == eventsv1.DistributorChainRejected_REASON_UNSPECIFIED {
			reason = eventsv1.DistributorChainRejected_REASON_MALFORMED // e.g. a purchase without a song id
		}
		e = &eventsv1.DistributorChainRejected{PurchaseId: req.PurchaseId, SongId: req.SongId, PurchaserId: req.PurchaserId,
			Reason: reason, Detail: err.Error()}
	} else {
		e = &eventsv1.DistributorChainResolved{PurchaseId: req.PurchaseId, SongId: req.SongId, PurchaserId: req.PurchaserId,
			DistributorIds: chain.Distributors, TokenHash: chain.TokenHash[:]}
	}
	p.Record(e)
	return p.Apply(e)
}

// Apply evolves the purchase chain by one event.
func (p *PurchaseChain) Apply(e proto.Message) error {
	switch e.(type) {
	case *eventsv1.DistributorChainResolved, *eventsv1.DistributorChainRejected:
		p.Decided = true
		return nil
	}
	return fmt.Errorf("purchase chain %s: unexpected event %T", p.ID, e)
}
