package app

import (
	"context"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/services/songs/domain"
)

// UpdateSong records a new version of a song's description (its artist
// only); new splits apply to money that moves after it. A repeat of the
// request returns the version it made. Errors: InvalidInput, NotFound,
// PermissionDenied, Conflict (request id reused, or the song is not
// registered).
func (a *App) UpdateSong(ctx context.Context, songID, requestID string, d *songsv1.Description) (uint64, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return 0, err
	}
	if err := apperr.CheckRequestID(requestID); err != nil {
		return 0, err
	}
	cur, err := a.load(ctx, songID)
	if err != nil {
		return 0, err
	}
	desc, err := a.toEvent(d, songID, cur.Versions[0].Description.ArtistId)
	if err != nil {
		return 0, err
	}
	digest := requestDigest(desc, "")
	var version uint64
	_, err = a.update(ctx, songID, func(s *domain.Song) error {
		version = uint64(len(s.Versions)) + 1
		if err := s.Update(desc, domain.SignDescription(a.Key, desc, version), who.ID, requestID, digest); err != nil {
			return err
		}
		version = s.Requests[domain.RequestKey(who.ID, requestID)].Version
		return nil
	})
	return version, err
}
