// Package app holds the plays service's use cases: opening sessions,
// recording heartbeats in batches and reading a session.
package app

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/money"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/accounts/ledgerview"
	"github.com/fanfare/fanfare/services/plays/adapters"
	"github.com/fanfare/fanfare/services/plays/domain"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
)

// MaxBatch is the most heartbeats one RecordHeartbeats call takes.
const MaxBatch = 1000

// Song is what the plays service knows of a song (from the registrar's
// events).
type Song struct {
	DurationMs uint64
}

// Songs are the songs sessions may be opened for.
type Songs struct {
	mu    sync.RWMutex
	songs map[string]Song
}

// NewSongs is an empty song list.
func NewSongs() *Songs { return &Songs{songs: map[string]Song{}} }

// Put records (or updates) a song.
func (s *Songs) Put(id string, song Song) {
	s.mu.Lock()
	s.songs[id] = song
	s.mu.Unlock()
}

// Get returns a song.
func (s *Songs) Get(id string) (Song, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	song, ok := s.songs[id]
	return song, ok
}

// Burns is what the plays service knows of the standard tier's burn: the
// royalty saga's current burn rate, the tier threshold of the policy and
// listeners' FAN balances, all from events.
type Burns struct {
	FAN *ledgerview.Balances

	mu           sync.RWMutex
	burn         int64
	discoveryMax uint64
}

// NewBurns starts with no burn and the design's threshold (10,000).
func NewBurns() *Burns {
	return &Burns{FAN: ledgerview.NewBalances("FAN"), discoveryMax: 10_000}
}

// SetBurn records the saga's burn rate (FAN minor units).
func (b *Burns) SetBurn(units int64) {
	b.mu.Lock()
	b.burn = units
	b.mu.Unlock()
}

// SetDiscoveryMax records the policy's tier threshold.
func (b *Burns) SetDiscoveryMax(n uint64) {
	b.mu.Lock()
	b.discoveryMax = n
	b.mu.Unlock()
}

// check refuses a standard-tier session to a listener whose FAN cannot
// cover the current burn.
func (b *Burns) check(listener string, nextPlay uint64) error {
	b.mu.RLock()
	burn, max := b.burn, b.discoveryMax
	b.mu.RUnlock()
	if nextPlay <= max || burn == 0 {
		return nil
	}
	if has := b.FAN.Get(accounts.WalletID(listener, "FAN")); has < burn {
		return apperr.New(apperr.Forbidden, "this song is in the standard tier: a play burns %s FAN and %s has %s FAN",
			money.FormatUnits(burn, 8), listener, money.FormatUnits(has, 8))
	}
	return nil
}

// App is the plays service's application layer.
type App struct {
	Shards []*adapters.ShardWriter
	Songs  *Songs
	Burns  *Burns
	Now    func() time.Time
	// Ready is closed once the songs and balances the service learns from
	// events are caught up; until then sessions wait to start, so none is
	// refused on a half-built read model.
	Ready chan struct{}
	// ReadyWait bounds that wait (default 10 s).
	ReadyWait time.Duration

	rules atomic.Pointer[versionedRules]
	mu    sync.Mutex
	open  map[string]int // listener → open sessions
}

type versionedRules struct {
	version uint64
	rules   domain.Rules
}

// New wires the use cases over recovered shards; rules apply until a
// policy's play rules arrive (ApplyPolicy).
func New(shards []*adapters.ShardWriter, songs *Songs, rules domain.Rules, now func() time.Time) *App {
	a := &App{Shards: shards, Songs: songs, Burns: NewBurns(), Now: now, Ready: make(chan struct{}), ReadyWait: 10 * time.Second,
		open: map[string]int{}}
	a.rules.Store(&versionedRules{rules: rules})
	return a
}

// Rules are the play rules of the newest policy the service has seen.
func (a *App) Rules() domain.Rules { return a.rules.Load().rules }

// ApplyPolicy records a policy's play rules in every shard (each shard
// stream says from which heartbeat on they apply) and uses them for the
// checks made outside the shards. An older or repeated version changes
// nothing.
func (a *App) ApplyPolicy(ctx context.Context, version uint64, rules domain.Rules) error {
	if err := rules.Validate(); err != nil {
		return err
	}
	for _, w := range a.Shards {
		if err := w.ApplyRules(ctx, version, rules); err != nil {
			return err
		}
	}
	a.useRules(version, rules)
	return nil
}

// Recover rebuilds, at start, the open-session counts and the newest play
// rules the shards recorded.
func (a *App) Recover(ctx context.Context) error {
	counts := map[string]int{}
	for _, w := range a.Shards {
		var (
			part    map[string]int
			version uint64
			rules   domain.Rules
		)
		err := w.Do(ctx, func(s *adapters.Shard) ([]proto.Message, error) {
			part = map[string]int{} // fn may run more than once
			for _, sess := range s.Sessions {
				part[sess.ListenerID()]++
			}
			version, rules = s.PolicyVersion, s.Rules
			return nil, nil
		})
		if err != nil {
			return err
		}
		for l, n := range part {
			counts[l] += n
		}
		a.useRules(version, rules)
	}
	a.mu.Lock()
	a.open = counts
	a.mu.Unlock()
	return nil
}

// useRules makes rules of a version the current ones, unless newer are.
func (a *App) useRules(version uint64, rules domain.Rules) {
	for {
		cur := a.rules.Load()
		if version <= cur.version || a.rules.CompareAndSwap(cur, &versionedRules{version: version, rules: rules}) {
			return
		}
	}
}

// StartSession opens a single-use session. Errors: InvalidInput, NotFound
// (unknown song), PermissionDenied (another listener without the
// node_operator role), Exhausted (the listener has too many open sessions),
// Forbidden (a standard-tier song whose burn the listener's FAN cannot
// cover; the message says how much is needed).
func (a *App) StartSession(ctx context.Context, songID, listenerID, nodeID string) (string, time.Time, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	if listenerID == "" {
		listenerID = who.ID
	}
	if listenerID != who.ID {
		if err := identity.Require(who, identity.RoleNode); err != nil {
			return "", time.Time{}, err
		}
	}
	if nodeID == "" || len(nodeID) > 128 {
		return "", time.Time{}, apperr.New(apperr.InvalidInput, "node_id is required (1..128 characters)")
	}
	if err := a.ready(ctx); err != nil {
		return "", time.Time{}, err
	}
	song, ok := a.Songs.Get(songID)
	if !ok {
		return "", time.Time{}, apperr.New(apperr.NotFound, "song %q is not known to the plays service", songID)
	}
	maxOpen := a.Rules().MaxOpenSessions
	a.mu.Lock()
	if a.open[listenerID] >= int(maxOpen) {
		a.mu.Unlock()
		return "", time.Time{}, apperr.New(apperr.Exhausted, "listener %s has %d open sessions, the most allowed", listenerID, maxOpen)
	}
	a.open[listenerID]++
	a.mu.Unlock()
	shard := adapters.ShardOf(songID, len(a.Shards))
	id := fmt.Sprintf("%02x-%s", shard, uuid.NewString())
	expires, err := a.Shards[shard].Start(ctx, id, songID, listenerID, nodeID, song.DurationMs, a.Now(),
		func(next uint64) error { return a.Burns.check(listenerID, next) })
	if err != nil {
		a.closed(listenerID)
		return "", time.Time{}, err
	}
	return id, expires, nil
}

// ready waits for the read models to catch up.
func (a *App) ready(ctx context.Context) error {
	select {
	case <-a.Ready:
		return nil
	default:
	}
	t := time.NewTimer(a.ReadyWait)
	defer t.Stop()
	select {
	case <-a.Ready:
		return nil
	case <-ctx.Done():
		return apperr.Wrap(apperr.Unavailable, ctx.Err())
	case <-t.C:
		return apperr.New(apperr.Unavailable, "the plays service is still reading songs and balances after %s; try again shortly", a.ReadyWait)
	}
}

func (a *App) closed(listeners ...string) {
	a.mu.Lock()
	for _, l := range listeners {
		if a.open[l]--; a.open[l] <= 0 {
			delete(a.open, l)
		}
	}
	a.mu.Unlock()
}

// shardOfSession reads the shard from a session id ("<shard hex>-<uuid>").
func (a *App) shardOfSession(id string) (int, bool) {
	prefix, _, ok := strings.Cut(id, "-")
	if !ok || len(prefix) != 2 {
		return 0, false
	}
	n, err := strconv.ParseUint(prefix, 16, 8)
	if err != nil || int(n) >= len(a.Shards) {
		return 0, false
	}
	return int(n), true
}

// HeartbeatIn is one heartbeat of a request.
type HeartbeatIn struct {
	SessionID string
	domain.Heartbeat
}

// RecordHeartbeats records a batch: each shard's part goes to its writer,
// shards in parallel. Results are in request order.
func (a *App) RecordHeartbeats(ctx context.Context, beats []HeartbeatIn) ([]adapters.BeatResult, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if len(beats) == 0 || len(beats) > MaxBatch {
		return nil, apperr.New(apperr.InvalidInput, "send 1..%d heartbeats per call, got %d", MaxBatch, len(beats))
	}
	out := make([]adapters.BeatResult, len(beats))
	byShard := map[int][]adapters.Beat{}
	for i, b := range beats {
		n, ok := a.shardOfSession(b.SessionID)
		if !ok {
			out[i] = adapters.BeatResult{Result: domain.Result{Seq: b.Seq, Status: domain.Refused, Reason: "unknown_session"}}
			continue
		}
		byShard[n] = append(byShard[n], adapters.Beat{Index: i, SessionID: b.SessionID, Heartbeat: b.Heartbeat})
	}
	now := a.Now()
	authorize := func(s *domain.Session) bool {
		return s.ListenerID() == who.ID || s.NodeID() == who.ID
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for n, part := range byShard {
		g.Go(func() error {
			res, err := a.Shards[n].Heartbeats(gctx, part, now, authorize)
			if err != nil {
				return err
			}
			mu.Lock()
			for i, r := range res {
				out[i] = r
			}
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, apperr.Wrap(apperr.Unavailable, err)
	}
	return out, nil
}

// SessionView is what GetSession shows.
type SessionView struct {
	ID, SongID, ListenerID, NodeID  string
	DurationMs, CoverageMs, LastSeq uint64
	Counted, Expired                bool
	PlayID                          string
	ExpiresAt                       time.Time
}

// GetSession shows a session to its listener, its node and auditors.
func (a *App) GetSession(ctx context.Context, id string) (SessionView, error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return SessionView{}, err
	}
	n, ok := a.shardOfSession(id)
	if !ok {
		return SessionView{}, apperr.New(apperr.NotFound, "no open session %q", id)
	}
	var v SessionView
	found, err := a.Shards[n].Session(ctx, id, func(s *domain.Session, rules domain.Rules) {
		v = SessionView{ID: s.ID(), SongID: s.SongID(), ListenerID: s.ListenerID(), NodeID: s.NodeID(), DurationMs: s.DurationMs(),
			CoverageMs: s.CoverageMs(), LastSeq: s.LastSeq(), Counted: s.Counted(), Expired: s.Expired(), PlayID: s.PlayID(),
			ExpiresAt: s.ExpiresAt(rules)}
	})
	if err != nil {
		return SessionView{}, err
	}
	if !found {
		return SessionView{}, apperr.New(apperr.NotFound, "no open session %q (unknown or expired)", id)
	}
	if v.ListenerID != who.ID && v.NodeID != who.ID && !who.Has(identity.RoleAuditor) {
		return SessionView{}, apperr.New(apperr.PermissionDenied, "session %s is not yours", id)
	}
	return v, nil
}

// ExpireSessions ends expired sessions in every shard.
func (a *App) ExpireSessions(ctx context.Context) error {
	for _, w := range a.Shards {
		listeners, err := w.Expire(ctx, a.Now())
		if err != nil {
			return err
		}
		a.closed(listeners...)
	}
	return nil
}
