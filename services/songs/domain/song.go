package domain

import (
	"bytes"
	"fmt"
	"github.com/fanfare/fanfare/events"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"google.golang.org/protobuf/proto"
)

// Status is where a song stands.
type Status uint8

const (
	StatusNone       Status = iota
	StatusRegistered        // a song of its own
	StatusDisputed          // held: its fingerprint matched a registered song
	StatusAssigned          // a moderator assigned it to the song it matched
)

func (s Status) String() string {
	return [...]string{"none", "registered", "disputed", "assigned"}[s]
}

// Version is one signed version of a description.
type Version struct {
	Description *eventsv1.SongDescription
	Signature   []byte
}

// Dispute is why a registration is held.
type Dispute struct {
	MatchedSongID string
	SimilarityPPM uint32
	Offset        int32
}

// Request is a recorded idempotency key with the digest of its content and
// the version it produced.
type Request struct {
	Digest  []byte
	Version uint64
}

// Song is the aggregate of stream song-<id>. Registrations, copies, edits,
// disputes and reveals are idempotent by request, purchase or campaign id.
type Song struct {
	events.Recorder
	ID         string
	Status     Status
	Versions   []Version // Versions[i] is version i+1
	Dispute    Dispute
	AssignedTo string
	Registrant string
	// Locations are the sealed download locations: the first registration's,
	// then each copy's.
	Locations [][]byte
	Requests  map[string]Request // key: requester + "/" + request id
	Revealed  map[string]string  // purchase id → purchaser id
	Unlocked  map[string]bool    // by campaign id
}

// NewSong is an empty song with the given id (a repository factory).
func NewSong(id string) *Song {
	return &Song{ID: id, Requests: map[string]Request{}, Revealed: map[string]string{}, Unlocked: map[string]bool{}}
}

// Current is the newest version (nil before registration).
func (s *Song) Current() *Version {
	if len(s.Versions) == 0 {
		return nil
	}
	return &s.Versions[len(s.Versions)-1]
}

// Copies counts registrations of identical content, the original included.
func (s *Song) Copies() int { return len(s.Locations) }

// OpenToEveryone reports whether a campaign unlocked the song.
func (s *Song) OpenToEveryone() bool { return len(s.Unlocked) > 0 }

// PurchasedBy reports whether purchaser paid for the song.
func (s *Song) PurchasedBy(purchaser string) bool {
	for _, p := range s.Revealed {
		if p == purchaser {
			return true
		}
	}
	return false
}

// RequestKey names an idempotency key of one requester.
func RequestKey(requester, requestID string) string { return requester + "/" + requestID }

// Seen reports whether a request was handled: (true, nil) for a repeat with
// the same digest, an ErrRequestConflict for other content.
func (s *Song) Seen(requester, requestID string, digest []byte) (bool, error) {
	r, ok := s.Requests[RequestKey(requester, requestID)]
	if !ok {
		return false, nil
	}
	if !bytes.Equal(r.Digest, digest) {
		return true, kinded(apperr.Conflict, ErrRequestConflict, "request %s was used with other content", requestID)
	}
	return true, nil
}

// Registration is what a new song starts from.
type Registration struct {
	Description *eventsv1.SongDescription // version 1, validated
	Signature   []byte
	Location    []byte // sealed
	By          string
	RequestID   string
	Digest      []byte
}

// Register records a new song. Errors: ErrState when the stream is taken.
func (s *Song) Register(r Registration) error {
	if s.Status != StatusNone {
		return kinded(apperr.Conflict, ErrState, "song %s is already %s", s.ID, s.Status)
	}
	return s.record(&eventsv1.SongRegistered{Description: r.Description, Version: 1, Signature: r.Signature,
		SealedLocation: r.Location, RegisteredBy: r.By, RequestId: r.RequestID, RequestDigest: r.Digest})
}

// Hold records a registration held because it matched another song.
func (s *Song) Hold(r Registration, d Dispute) error {
	if s.Status != StatusNone {
		return kinded(apperr.Conflict, ErrState, "song %s is already %s", s.ID, s.Status)
	}
	return s.record(&eventsv1.SongDisputed{Description: r.Description, SealedLocation: r.Location, RegisteredBy: r.By,
		MatchedSongId: d.MatchedSongID, SimilarityPpm: d.SimilarityPPM, Offset: d.Offset,
		RequestId: r.RequestID, RequestDigest: r.Digest, Signature: r.Signature})
}

// AddCopy joins a registration with identical content to this song.
func (s *Song) AddCopy(location []byte, by, requestID string, digest []byte) error {
	if s.Status != StatusRegistered {
		return kinded(apperr.Conflict, ErrState, "song %s is %s, copies join registered songs only", s.ID, s.Status)
	}
	if seen, err := s.Seen(by, requestID, digest); seen || err != nil {
		return err
	}
	return s.record(&eventsv1.SongCopyAdded{SongId: s.ID, SealedLocation: location, AddedBy: by, RequestId: requestID, RequestDigest: digest})
}

// Update records a new version by the song's artist; a repeat of the same
// request is a no-op.
func (s *Song) Update(d *eventsv1.SongDescription, sig []byte, by, requestID string, digest []byte) error {
	if s.Status != StatusRegistered {
		return kinded(apperr.Conflict, ErrState, "song %s is %s, only registered songs get new versions", s.ID, s.Status)
	}
	if seen, err := s.Seen(by, requestID, digest); seen || err != nil {
		return err
	}
	if by != s.Current().Description.ArtistId {
		return kinded(apperr.PermissionDenied, ErrNotAllowed, "only the song's artist %s may edit it", s.Current().Description.ArtistId)
	}
	if d.SongId != s.ID || d.ArtistId != s.Current().Description.ArtistId {
		return invalid("an edit keeps the song id and the artist")
	}
	return s.record(&eventsv1.SongUpdated{Description: d, Version: uint64(len(s.Versions)) + 1, Signature: sig,
		UpdatedBy: by, RequestId: requestID, RequestDigest: digest})
}

// Resolve records a moderator's decision on a held registration. Dismissed
// registrations become songs of their own at once (same signed version 1).
func (s *Song) Resolve(assign bool, moderator, note string) error {
	if s.Status != StatusDisputed {
		return kinded(apperr.Conflict, ErrState, "song %s is %s, not disputed", s.ID, s.Status)
	}
	res := eventsv1.DisputeResolved_RESOLUTION_DISMISSED
	if assign {
		res = eventsv1.DisputeResolved_RESOLUTION_ASSIGNED
	}
	if err := s.record(&eventsv1.DisputeResolved{SongId: s.ID, MatchedSongId: s.Dispute.MatchedSongID, Resolution: res,
		ResolvedBy: moderator, Note: note}); err != nil {
		return err
	}
	if assign {
		return nil
	}
	v := s.Versions[0]
	return s.record(&eventsv1.SongRegistered{Description: v.Description, Version: 1, Signature: v.Signature,
		SealedLocation: s.Locations[0], RegisteredBy: s.Registrant})
}

// Reveal records that a purchase was paid; sealed is the location sealed
// to the purchaser's key (empty when the purchaser gave none). Repeats are
// no-ops.
func (s *Song) Reveal(purchaseID, purchaser string, sealed []byte) error {
	if _, ok := s.Revealed[purchaseID]; ok {
		return nil
	}
	if s.Status != StatusRegistered {
		return kinded(apperr.Conflict, ErrState, "song %s is %s and cannot be sold", s.ID, s.Status)
	}
	return s.record(&eventsv1.LocationRevealed{SongId: s.ID, PurchaseId: purchaseID, PurchaserId: purchaser, SealedLocation: sealed})
}

// Unlock opens the location to everyone after a campaign succeeded.
func (s *Song) Unlock(campaignID string) error {
	if s.Unlocked[campaignID] {
		return nil
	}
	if s.Status != StatusRegistered {
		return kinded(apperr.Conflict, ErrState, "song %s is %s and cannot be unlocked", s.ID, s.Status)
	}
	return s.record(&eventsv1.SongUnlocked{SongId: s.ID, CampaignId: campaignID})
}

func (s *Song) record(e proto.Message) error { return events.RecordNew(s, e) }

func (s *Song) remember(by, requestID string, digest []byte, version uint64) {
	if requestID != "" {
		s.Requests[RequestKey(by, requestID)] = Request{Digest: digest, Version: version}
	}
}

// Apply evolves the song by one event.
func (s *Song) Apply(e proto.Message) error {
	switch e := e.(type) {
	case *eventsv1.SongRegistered:
		if s.Status == StatusNone { // not after a dismissed dispute: version 1 is already there
			s.Versions = append(s.Versions, Version{Description: e.Description, Signature: e.Signature})
			s.Locations = append(s.Locations, e.SealedLocation)
			s.Registrant = e.RegisteredBy
		}
		s.Status = StatusRegistered
		s.remember(e.RegisteredBy, e.RequestId, e.RequestDigest, 1)
	case *eventsv1.SongDisputed:
		s.Status = StatusDisputed
		s.Versions = append(s.Versions, Version{Description: e.Description, Signature: e.Signature})
		s.Locations = append(s.Locations, e.SealedLocation)
		s.Registrant = e.RegisteredBy
		s.Dispute = Dispute{MatchedSongID: e.MatchedSongId, SimilarityPPM: e.SimilarityPpm, Offset: e.Offset}
		s.remember(e.RegisteredBy, e.RequestId, e.RequestDigest, 1)
	case *eventsv1.DisputeResolved:
		if e.Resolution == eventsv1.DisputeResolved_RESOLUTION_ASSIGNED {
			s.Status, s.AssignedTo = StatusAssigned, e.MatchedSongId
		}
	case *eventsv1.SongCopyAdded:
		s.Locations = append(s.Locations, e.SealedLocation)
		s.remember(e.AddedBy, e.RequestId, e.RequestDigest, uint64(len(s.Versions)))
	case *eventsv1.SongUpdated:
		if e.Version != uint64(len(s.Versions))+1 {
			return fmt.Errorf("song %s: version %d follows %d", s.ID, e.Version, len(s.Versions))
		}
		s.Versions = append(s.Versions, Version{Description: e.Description, Signature: e.Signature})
		s.remember(e.UpdatedBy, e.RequestId, e.RequestDigest, e.Version)
	case *eventsv1.LocationRevealed:
		s.Revealed[e.PurchaseId] = e.PurchaserId
	case *eventsv1.SongUnlocked:
		s.Unlocked[e.CampaignId] = true
	default:
		return fmt.Errorf("song %s: unexpected event %T", s.ID, e)
	}
	return nil
}
