// Package app holds the chains service's use cases: issuing root tokens,
// registering distributor keys, and resolving a purchase's token.
package app

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"sync"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/identity"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/chains/domain"
	"github.com/google/uuid"
)

// ResolveConsumer names the reaction to PurchaseRequested (part of its
// event ids: never rename).
const ResolveConsumer = "chains.resolve"

// tokenIDs derives a root's token id from (distributor, request id).
var tokenIDs = uuid.MustParse("0c9a3f1e-5b7d-4e2a-9f61-3d8e2b4c7a15")

// App is the chains service's application layer.
type App struct {
	Keys         domain.ServiceKeys
	MaxHops      int
	Distributors *eventstore.Repository[*domain.Distributor]
	Referrals    *eventstore.Repository[*domain.Referral]
	Purchases    *eventstore.Repository[*domain.PurchaseChain]

	keys sync.Map // distributor id → ed25519.PublicKey (keys never change once registered)
}

// IssueReferral issues the caller a root token for a song. A repeat of
// the request returns the same token. Errors: InvalidInput, Conflict.
func (a *App) IssueReferral(ctx context.Context, requestID, songID string) (string, []byte, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return "", nil, err
	}
	if err := apperr.CheckRequestID(requestID); err != nil {
		return "", nil, err
	}
	if _, err := uuid.Parse(songID); err != nil {
		return "", nil, apperr.New(apperr.InvalidInput, "song_id %q is not a GUID", songID)
	}
	tokenID := uuid.NewSHA1(tokenIDs, []byte(who.ID+"/"+requestID)).String()
	token, err := domain.IssueRoot(a.Keys, tokenID, songID, who.ID)
	if err != nil {
		return "", nil, apperr.Wrap(apperr.InvalidInput, err)
	}
	var issued []byte
	err = a.Referrals.Update(ctx, tokenID, func(r *domain.Referral) error {
		if err := r.Issue(songID, who.ID, token); err != nil {
			return err
		}
		issued = r.Issued.Token
		return nil
	})
	return tokenID, issued, err
}

// RegisterDistributorKey records the caller's hop-signing key.
func (a *App) RegisterDistributorKey(ctx context.Context, key []byte) (string, bool, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return "", false, err
	}
	var registered bool
	err = a.Distributors.Update(ctx, who.ID, func(d *domain.Distributor) error {
		registered, err = d.RegisterKey(key)
		return err
	})
	return who.ID, registered, err
}

// ServiceKeys are the public keys: root signing, hop sealing, and the
// sealing key as `fanfare referral extend --service-key` takes it.
func (a *App) ServiceKeys() (ed25519.PublicKey, []byte, string) {
	p := a.Keys.Public()
	return p.Sign, p.Box[:], base64.StdEncoding.EncodeToString(p.Box[:])
}

// ResolvePurchase reacts to PurchaseRequested: it resolves the referral
// token (no token: an empty chain) and records the one answer.
func (a *App) ResolvePurchase(ctx context.Context, cause events.Envelope, e *eventsv1.PurchaseRequested) error {
	// Keys come from the distributors' streams; a store failure while
	// looking one up is not the token's fault, so it is retried instead of
	// rejecting the token.
	var lookupErr error
	keyOf := func(id string) (ed25519.PublicKey, bool) {
		if k, ok := a.keys.Load(id); ok {
			return k.(ed25519.PublicKey), true
		}
		d, rev, err := a.Distributors.Load(ctx, id)
		if err != nil {
			lookupErr = err
			return nil, false
		}
		if rev < 0 || d.Key == nil {
			return nil, false
		}
		a.keys.Store(id, d.Key)
		return d.Key, true
	}
	var chain domain.Chain
	var resolveErr error
	if len(e.ReferralToken) > 0 {
		chain, resolveErr = domain.Resolve(e.ReferralToken, e.SongId, e.PurchaserId, a.Keys, keyOf, a.MaxHops)
	}
	if lookupErr != nil {
		return lookupErr
	}
	id := e.PurchaseId
	if id == "" {
		id = cause.ID.String()
	}
	return a.Purchases.React(ctx, id, ResolveConsumer, cause, func(p *domain.PurchaseChain) error {
		return p.Decide(e, chain, resolveErr)
	})
}
