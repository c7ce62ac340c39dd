package events

import "google.golang.org/protobuf/proto"

// Recorder collects an aggregate's new events until the repository flushes
// them; aggregates embed it. It lives here, not in the event store package,
// so domain packages stay free of I/O imports.
type Recorder struct{ changes []proto.Message }

// Record notes a new event.
func (r *Recorder) Record(e proto.Message) { r.changes = append(r.changes, e) }

// Flush returns the recorded events and forgets them.
func (r *Recorder) Flush() []proto.Message {
	c := r.changes
	r.changes = nil
	return c
}

// Applier is an aggregate that evolves by its events and records new ones
// (through an embedded Recorder).
type Applier interface {
	Apply(proto.Message) error
	Record(proto.Message)
}

// RecordNew applies each new event to a, as a replay would, and records
// it; it stops at the first event Apply refuses.
func RecordNew(a Applier, evs ...proto.Message) error {
	for _, e := range evs {
		if err := a.Apply(e); err != nil {
			return err
		}
		a.Record(e)
	}
	return nil
}
