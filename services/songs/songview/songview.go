// Package songview is the registrar's published reading of its own events
// for other services that keep a song read model from Kafka.
package songview

import (
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	"google.golang.org/protobuf/proto"
)

// Description is the song description an event makes current: a
// registration (also the one that follows a dismissed dispute) or a new
// version, whose splits apply to money that moves after it. nil for any
// other event.
func Description(m proto.Message) *eventsv1.SongDescription {
	switch e := m.(type) {
	case *eventsv1.SongRegistered:
		return e.Description
	case *eventsv1.SongUpdated:
		return e.Description
	}
	return nil
}
