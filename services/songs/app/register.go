package app

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/sealbox"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/services/songs/domain"
	"github.com/google/uuid"
)

// songIDs derives a registration's song id from (requester, request id), so
// a repeated request names the same song.
var songIDs = uuid.MustParse("6f0b5c1e-8a44-4d0e-9b7e-2f3a1c9d5e70")

// MaxLocationLen bounds a download location.
const MaxLocationLen = 2048

// Registered is the outcome of RegisterSong.
type Registered struct {
	Outcome       songsv1.Outcome
	SongID        string
	Version       uint64
	MatchedSongID string
	SimilarityPPM uint32
	Offset        int32
}

// RegisterSong registers a description (artists only). A repeat of the
// request returns the first outcome. Errors: InvalidInput (names the field),
// Conflict (request id reused with other content), PermissionDenied.
func (a *App) RegisterSong(ctx context.Context, requestID string, d *songsv1.Description, location string) (Registered, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return Registered{}, err
	}
	if err := identity.Require(who, identity.RoleArtist); err != nil {
		return Registered{}, err
	}
	if err := apperr.CheckRequestID(requestID); err != nil {
		return Registered{}, err
	}
	if location == "" || len(location) > MaxLocationLen {
		return Registered{}, bad("download_location is required (1..%d bytes)", MaxLocationLen)
	}
	key := domain.RequestKey(who.ID, requestID)
	songID := uuid.NewSHA1(songIDs, []byte(key)).String()
	desc, err := a.toEvent(d, songID, who.ID)
	if err != nil {
		return Registered{}, err
	}
	digest := requestDigest(desc, location)
	sealed, err := sealbox.Seal(a.Box.Public, []byte(location))
	if err != nil {
		return Registered{}, err
	}

	a.register.Lock()
	defer a.register.Unlock()
	if id, ok := a.Catalog.Request(key); ok {
		return a.repeat(ctx, id, who.ID, requestID, digest)
	}
	if id, ok := a.Catalog.ByContentHash(desc.ContentHash); ok {
		s, err := a.update(ctx, id, func(s *domain.Song) error { return s.AddCopy(sealed, who.ID, requestID, digest) })
		if err != nil {
			return Registered{}, err
		}
		return Registered{Outcome: songsv1.Outcome_OUTCOME_COPY, SongID: id, Version: uint64(len(s.Versions))}, nil
	}
	reg := domain.Registration{Description: desc, Signature: domain.SignDescription(a.Key, desc, 1), Location: sealed,
		By: who.ID, RequestID: requestID, Digest: digest}
	if m, ok := a.Catalog.Match(desc.Fingerprint); ok {
		dispute := domain.Dispute{MatchedSongID: m.SongID, SimilarityPPM: m.SimilarityPPM, Offset: int32(m.Offset)}
		if _, err := a.update(ctx, songID, func(s *domain.Song) error { return s.Hold(reg, dispute) }); err != nil {
			return Registered{}, err
		}
		return Registered{Outcome: songsv1.Outcome_OUTCOME_DISPUTED, SongID: songID, Version: 1,
			MatchedSongID: m.SongID, SimilarityPPM: m.SimilarityPPM, Offset: int32(m.Offset)}, nil
	}
	if _, err := a.update(ctx, songID, func(s *domain.Song) error { return s.Register(reg) }); err != nil {
		return Registered{}, err
	}
	return Registered{Outcome: songsv1.Outcome_OUTCOME_REGISTERED, SongID: songID, Version: 1}, nil
}

// repeat answers a registration request that was handled before.
func (a *App) repeat(ctx context.Context, id, who, requestID string, digest []byte) (Registered, error) {
	s, err := a.load(ctx, id)
	if err != nil {
		return Registered{}, err
	}
	if _, err := s.Seen(who, requestID, digest); err != nil {
		return Registered{}, err
	}
	out := Registered{SongID: id, Version: s.Requests[domain.RequestKey(who, requestID)].Version}
	switch {
	case id != uuid.NewSHA1(songIDs, []byte(domain.RequestKey(who, requestID))).String(): // it joined another song
		out.Outcome = songsv1.Outcome_OUTCOME_COPY
	case s.Status == domain.StatusDisputed || s.Status == domain.StatusAssigned:
		out.Outcome = songsv1.Outcome_OUTCOME_DISPUTED
		out.MatchedSongID, out.SimilarityPPM, out.Offset = s.Dispute.MatchedSongID, s.Dispute.SimilarityPPM, s.Dispute.Offset
	default:
		out.Outcome = songsv1.Outcome_OUTCOME_REGISTERED
		if s.Dispute.MatchedSongID != "" { // dismissed later: it was held first
			out.Outcome = songsv1.Outcome_OUTCOME_DISPUTED
			out.MatchedSongID, out.SimilarityPPM, out.Offset = s.Dispute.MatchedSongID, s.Dispute.SimilarityPPM, s.Dispute.Offset
		}
	}
	return out, nil
}

// requestDigest fingerprints a request's content for idempotency: the
// canonical description (stable across releases) and the location.
func requestDigest(d *eventsv1.SongDescription, location string) []byte {
	h := sha256.New()
	h.Write(domain.Canonical(d, 0))
	fmt.Fprintf(h, "location:%q\n", location)
	return h.Sum(nil)
}
