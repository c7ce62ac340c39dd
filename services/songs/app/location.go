package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/fanfare/fanfare/events"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/sealbox"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/songs/domain"
)

// Consumer names of the registrar's reactions (part of their event ids:
// never rename).
const (
	RevealConsumer = "songs.reveal"
	UnlockConsumer = "songs.unlock"
)

// Reveal reacts to PurchaseCompleted: the purchaser may download the song
// from now on, and the location, sealed to the purchaser's key, goes in the
// log. Unknown songs and purchases of songs that are not for sale are
// logged and skipped (nothing to reveal); redelivery appends nothing.
func (a *App) Reveal(ctx context.Context, cause events.Envelope, e *eventsv1.PurchaseCompleted) error {
	if _, ok := a.Catalog.Get(e.SongId); !ok {
		slog.Warn("purchase of an unknown song", "song", e.SongId, "purchase", e.PurchaseId)
		return nil
	}
	return a.Songs.React(ctx, e.SongId, RevealConsumer, cause, func(s *domain.Song) error {
		var sealed []byte
		if len(e.PurchaserPublicKey) > 0 {
			to, err := sealbox.PublicKey(e.PurchaserPublicKey)
			if err != nil {
				slog.Warn("purchaser key unusable; location revealed on request only", "purchase", e.PurchaseId, "err", err)
			} else {
				loc, err := a.Box.Open(s.Locations[0])
				if err != nil {
					return err
				}
				if sealed, err = sealbox.Seal(to, loc); err != nil {
					return err
				}
			}
		}
		err := s.Reveal(e.PurchaseId, e.PurchaserId, sealed)
		if errors.Is(err, domain.ErrState) {
			slog.Warn("purchase of a song that cannot be sold", "song", e.SongId, "purchase", e.PurchaseId, "err", err)
			return nil
		}
		return err
	})
}

// Unlock reacts to CampaignSucceeded: every song the campaign named opens
// to everyone.
func (a *App) Unlock(ctx context.Context, cause events.Envelope, e *eventsv1.CampaignSucceeded) error {
	for _, id := range e.SongIds {
		if _, ok := a.Catalog.Get(id); !ok {
			slog.Warn("campaign unlocks an unknown song", "song", id, "campaign", e.CampaignId)
			continue
		}
		err := a.Songs.React(ctx, id, UnlockConsumer, cause, func(s *domain.Song) error {
			err := s.Unlock(e.CampaignId)
			if errors.Is(err, domain.ErrState) {
				slog.Warn("campaign unlocks a song that is not registered", "song", id, "campaign", e.CampaignId)
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// GetDownloadLocation reveals the location to the song's artist, to a
// purchaser after payment, and to everyone once a campaign unlocked it.
// Errors: NotFound, PermissionDenied (not paid for).
func (a *App) GetDownloadLocation(ctx context.Context, songID string) (string, string, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return "", "", err
	}
	s, err := a.load(ctx, songID)
	if err != nil {
		return "", "", err
	}
	var reason string
	switch {
	case s.Status != domain.StatusRegistered:
		return "", "", notFound(songID)
	case s.PurchasedBy(who.ID):
		reason = "purchase"
	case s.OpenToEveryone():
		reason = "unlocked"
	case s.Registrant == who.ID:
		reason = "artist"
	default:
		return "", "", apperr.New(apperr.PermissionDenied, "song %s is sealed: buy it first", songID)
	}
	loc, err := a.Box.Open(s.Locations[0])
	if err != nil {
		return "", "", err
	}
	return string(loc), reason, nil
}
