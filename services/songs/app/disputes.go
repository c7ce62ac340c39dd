package app

import (
	"context"

	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/services/songs/adapters"
	"github.com/fanfare/fanfare/services/songs/domain"
)

// MaxNoteLen bounds a moderator's note.
const MaxNoteLen = 2048

// ListDisputes lists held registrations (moderators).
func (a *App) ListDisputes(ctx context.Context, pageSize int, pageToken string) ([]adapters.Entry, string, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := identity.Require(who, identity.RoleModerator); err != nil {
		return nil, "", err
	}
	n, err := pageLimit(pageSize)
	if err != nil {
		return nil, "", err
	}
	out := a.Catalog.Disputes(pageToken, n)
	return out, nextToken(out, n), nil
}

// ResolveDispute assigns a held registration to the song it matched, or
// dismisses the match (moderators). It returns the song the registration
// now belongs to and its status. Errors: InvalidInput (decision),
// NotFound, Conflict (not disputed), PermissionDenied.
func (a *App) ResolveDispute(ctx context.Context, songID, decision, note string) (string, domain.Status, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return "", 0, err
	}
	if err := identity.Require(who, identity.RoleModerator); err != nil {
		return "", 0, err
	}
	if decision != "assign" && decision != "dismiss" {
		return "", 0, bad("decision %q: want assign or dismiss", clip(decision))
	}
	if len(note) > MaxNoteLen {
		return "", 0, bad("note is longer than %d bytes", MaxNoteLen)
	}
	if _, err := a.load(ctx, songID); err != nil {
		return "", 0, err
	}
	a.register.Lock() // a dismissal adds a song to the conflict index
	defer a.register.Unlock()
	s, err := a.update(ctx, songID, func(s *domain.Song) error { return s.Resolve(decision == "assign", who.ID, note) })
	if err != nil {
		return "", 0, err
	}
	if s.Status == domain.StatusAssigned {
		return s.AssignedTo, s.Status, nil
	}
	return s.ID, s.Status, nil
}
