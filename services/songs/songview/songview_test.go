package songview_test

import (
	"testing"

	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"github.com/fanfare/fanfare/services/songs/songview"
)

func TestDescription(t *testing.T) {
	v1 := &eventsv1.SongDescription{SongId: "s", Title: "v1"}
	v2 := &eventsv1.SongDescription{SongId: "s", Title: "v2"}
	if d := songview.Description(&eventsv1.SongRegistered{Description: v1}); d != v1 {
		t.Fatalf("registration: %v", d)
	}
	if d := songview.Description(&eventsv1.SongUpdated{Description: v2}); d != v2 {
		t.Fatalf("update: %v", d)
	}
	if d := songview.Description(&eventsv1.SongDisputed{Description: v1}); d != nil {
		t.Fatalf("a held registration is not a current description: %v", d)
	}
}
