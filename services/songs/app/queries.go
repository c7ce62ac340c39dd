package app

import (
	"context"
	"crypto/ed25519"
	"strconv"

	"github.com/fanfare/fanfare/internal/platform/identity"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/services/songs/adapters"
	"github.com/fanfare/fanfare/services/songs/domain"
)

// GetSong returns one version (0: the current one) of a song. Disputed
// registrations are visible to their registrant and moderators only.
func (a *App) GetSong(ctx context.Context, songID string, version uint64) (*songsv1.Song, error) {
	s, v, err := a.version(ctx, songID, version)
	if err != nil {
		return nil, err
	}
	return &songsv1.Song{SongId: s.ID, Version: v, ArtistId: s.Versions[0].Description.ArtistId, Status: s.Status.String(),
		Description: fromEvent(s.Versions[v-1].Description, a.Assets), Copies: uint32(s.Copies()), AssignedTo: s.AssignedTo}, nil
}

// SignedDescription is what a peer needs to verify a version offline.
type SignedDescription struct {
	Canonical, Signature []byte
	PublicKey            ed25519.PublicKey
	Version              uint64
}

// GetSignedDescription returns the canonical bytes of a version and the
// registrar's signature over them.
func (a *App) GetSignedDescription(ctx context.Context, songID string, version uint64) (SignedDescription, error) {
	s, v, err := a.version(ctx, songID, version)
	if err != nil {
		return SignedDescription{}, err
	}
	ver := s.Versions[v-1]
	return SignedDescription{Canonical: domain.Canonical(ver.Description, v), Signature: ver.Signature,
		PublicKey: a.Key.Public().(ed25519.PublicKey), Version: v}, nil
}

func (a *App) version(ctx context.Context, songID string, version uint64) (*domain.Song, uint64, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, 0, err
	}
	s, err := a.load(ctx, songID)
	if err != nil {
		return nil, 0, err
	}
	if s.Status != domain.StatusRegistered && s.Registrant != who.ID && !who.Has(identity.RoleModerator) {
		return nil, 0, notFound(songID)
	}
	if version == 0 {
		version = uint64(len(s.Versions))
	}
	if version > uint64(len(s.Versions)) {
		return nil, 0, notFound(songID + " version " + strconv.FormatUint(version, 10))
	}
	return s, version, nil
}

// SearchSongs finds registered songs by words of title, artist, genre or
// album.
func (a *App) SearchSongs(ctx context.Context, query, field string, pageSize int, pageToken string) ([]adapters.Entry, string, error) {
	if _, err := identity.Caller(ctx); err != nil {
		return nil, "", err
	}
	switch field {
	case "", "title", "artist", "genre", "album":
	default:
		return nil, "", bad("field %q: want title, artist, genre, album or empty", clip(field))
	}
	if len(query) > 512 {
		return nil, "", bad("query is longer than 512 bytes")
	}
	n, err := pageLimit(pageSize)
	if err != nil {
		return nil, "", err
	}
	out := a.Catalog.Search(query, field, pageToken, n)
	return out, nextToken(out, n), nil
}

func pageLimit(size int) (int, error) {
	switch {
	case size == 0:
		return 20, nil
	case size < 0 || size > 100:
		return 0, bad("page_size %d: at most 100", size)
	}
	return size, nil
}

func nextToken(page []adapters.Entry, limit int) string {
	if len(page) < limit || len(page) == 0 {
		return ""
	}
	return page[len(page)-1].ID
}

// EntrySong is a catalog entry as the API shows it.
func (a *App) EntrySong(e adapters.Entry) *songsv1.Song {
	return &songsv1.Song{SongId: e.ID, Version: e.Version, ArtistId: e.Current.Description.ArtistId, Status: e.Status.String(),
		Description: fromEvent(e.Current.Description, a.Assets), Copies: uint32(e.Copies), AssignedTo: e.AssignedTo}
}

// PublicKeys are the registrar's Ed25519 signing key and X25519 box key.
func (a *App) PublicKeys() (sign ed25519.PublicKey, box []byte) {
	return a.Key.Public().(ed25519.PublicKey), a.Box.Public[:]
}
