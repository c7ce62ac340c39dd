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
