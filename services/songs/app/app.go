// Package app holds the registrar's use cases, one file each. They
// authorize the caller, convert the API's decimal strings to the events'
// minor units and ppm, and drive the song aggregates and the catalog.
package app

import (
	"context"
	"crypto/ed25519"
	"sync"

	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/money"
	"github.com/fanfare/fanfare/internal/platform/sealbox"
	"github.com/fanfare/fanfare/services/songs/adapters"
	"github.com/fanfare/fanfare/services/songs/domain"
)

// BoxPurpose derives the registrar's sealing keys from its signing key.
const BoxPurpose = "fanfare/registrar/v1"

// App is the songs service's application layer.
type App struct {
	Songs   *eventstore.Repository[*domain.Song]
	Catalog *adapters.Catalog
	Assets  money.Assets
	// Key signs description versions; Box (derived from it) opens sealed
	// download locations.
	Key ed25519.PrivateKey
	Box sealbox.Keys

	// register serializes registrations, so two conflicting songs cannot
	// both pass the content-hash and fingerprint checks at once.
	register sync.Mutex
}

// update runs fn on song id and refreshes the catalog from the result.
func (a *App) update(ctx context.Context, id string, fn func(*domain.Song) error) (*domain.Song, error) {
	var final *domain.Song
	err := a.Songs.Update(ctx, id, func(s *domain.Song) error {
		final = s
		return fn(s)
	})
	if err != nil {
		return nil, err
	}
	return final, a.Catalog.Put(final)
}

// load returns a song that exists.
func (a *App) load(ctx context.Context, id string) (*domain.Song, error) {
	s, rev, err := a.Songs.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	if rev < 0 {
		return nil, notFound(id)
	}
	return s, nil
}
