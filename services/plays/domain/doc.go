// Package domain holds the rules of the plays service (DESIGN §5): how
// heartbeats credit a listening session, when a session counts as a play,
// and when it expires. Pure: no I/O and no clock — every command takes the
// time it runs at, and the events carry that time so a replay decides the
// same.
//
// # Sessions and heartbeats
//
// A player opens a [Session] (song, listener, serving node, song duration)
// and then sends heartbeats {seq, from_ms, to_ms}: "since the previous
// heartbeat I played [from, to) of the song". A session id is single-use.
//
// A heartbeat is judged against the wall time of the service, never the
// player's clock (players cannot be trusted). Its credited range is
//
//	[from, min(to, from + min(wall + slack, maxCredit), duration))
//
// where wall is the time since the previous accepted heartbeat (for the first
// one: since the session started). Heartbeats closer than the minimum
// interval to the previous accepted one are refused, as are old or repeated
// sequence numbers, empty or out-of-song ranges and heartbeats of an expired
// session; a refused heartbeat changes nothing (its seq may be sent again).
//
// Batches: heartbeats arrive at high volume in batches that group many
// sessions, but every heartbeat of a batch is taken to arrive at the batch's
// time. Players send one heartbeat per interval as they play, so a batch
// normally holds at most one heartbeat per session; a player that queued
// several heartbeats and sends them together gets the first accepted and the
// others refused as too_soon (they arrived less than the minimum interval
// after it), which is exactly the protection against a player claiming more
// listening than wall time allows. [Session.Heartbeats] takes the heartbeats
// of one session from one batch, in order, and records at most one
// HeartbeatsCredited event with the acceptance time.
//
// # Coverage and counting
//
// [Coverage] is the union of the credited ranges within the song: replaying
// the chorus adds nothing, seeking 0–60 s then 90–150 s is 120 s. The first
// time coverage reaches the count threshold (50% of the duration by default)
// the session is countable and [Session.ReachedCount] reports it after that
// Heartbeats call. The PlayCounted event needs the song's play number, which
// a per-song counter elsewhere assigns, so Heartbeats never records it: the
// caller then calls [Session.Count] with the play id and the numbers, in the
// same update, and a session counts once.
//
// # Expiry
//
// A session expires a session TTL after its last accepted heartbeat (before
// any heartbeat: at SessionStarted.expires_at). [Session.Expire] records
// SessionExpired once the time passed in is after that.
//
// # Rules
//
// The numbers are [Rules] (the policy's PlayRules) passed to every command,
// so the rules in force when a command runs decide it. The bound on open
// sessions per listener is enforced by the app layer, which knows a
// listener's sessions; a session knows only itself.
package domain
