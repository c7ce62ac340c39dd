package domain_test

import (
	"slices"
	"testing"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/reports/domain"
	"google.golang.org/protobuf/proto"
)

// A stream's events can travel in two topics: the royalty saga's stream
// holds its RewardRequested (royalty topic) and its ledger request
// (accounts topic), and the two topics are read independently, so the
// request can arrive first. The reward still counts, once: marks are per
// topic and stream (a mark per stream counted 0 plays, as a CI run of the
// browser test showed).
func TestAStreamsEventsInAnotherTopicHideNothing(t *testing.T) {
	p := domain.New()
	at := func(stream string, rev uint64) domain.Source {
		return domain.Source{Stream: stream, Revision: rev, At: t0}
	}
	p.Apply(at("song-s1", 0), &eventsv1.SongRegistered{Description: &eventsv1.SongDescription{SongId: "s1", ArtistId: "ava", Title: "Live Wire"}})

	request := &eventsv1.LedgerTransactionRequested{TransactionId: "play-1", RequestedBy: "royalty"}
	reward := &eventsv1.RewardRequested{PlayId: "play-1", SongId: "s1", Tier: "discovery"}
	refused := &eventsv1.RewardRefused{PlayId: "play-1", SongId: "s1"}
	deliveries := []struct {
		rev     uint64
		msg     proto.Message
		touched []string
	}{
		{1, request, nil}, // the accounts topic is ahead
		{0, reward, []string{"ava"}},
		{2, refused, nil},
		{0, reward, nil}, // delivered again (at least once): nothing
		{1, request, nil},
	}
	for i, d := range deliveries {
		touched, _ := p.Apply(at("royalty", d.rev), d.msg)
		if !slices.Equal(touched, d.touched) {
			t.Errorf("delivery %d (royalty@%d %T) touched %v, want %v", i, d.rev, d.msg, touched, d.touched)
		}
	}
	songs := p.Dashboard("ava").Songs
	if len(songs) != 1 || songs[0].Discovery != 1 || songs[0].Standard != 0 {
		t.Fatalf("dashboard songs %+v, want Live Wire with 1 discovery play", songs)
	}
	if !p.Seen(at("royalty", 0), reward) || p.Seen(at("royalty", 3), reward) || p.Seen(at("royalty", 2), request) {
		t.Error("Seen does not follow the marks per topic")
	}
}
