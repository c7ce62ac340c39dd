package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/cluster"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
	"github.com/fanfare/fanfare/internal/platform/h2c"
	"github.com/fanfare/fanfare/internal/platform/identity"
	accountsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/accounts/v1/accountsv1connect"
	playsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1/playsv1connect"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1/songsv1connect"
	songsdomain "github.com/fanfare/fanfare/services/songs/domain"
	"golang.org/x/sync/errgroup"
)

func init() { register("e2e", e2eScenario) }

const (
	// e2ePlaysPerSec is the rate of counted plays the latency phase offers
	// (the target); e2eP99GoalMS its goal for play → payout.
	e2ePlaysPerSec = 10_000
	e2eP99GoalMS   = 250
	// e2eRewardWait bounds the wait for the last rewards.
	e2eRewardWait = 60 * time.Second
	// Songs of each kind: long ones for the heartbeat rounds (never counted
	// within a run), short ones counted by their first heartbeat.
	e2eSongs       = 64
	e2eLongSongMs  = 600_000
	e2eShortSongMs = 2_000
	// e2eSessions are the sessions fed heartbeats in rounds, in batches of
	// e2eBatch from e2eClients concurrent clients.
	e2eSessions = 24_000
	e2eBatch    = 1000
	e2eClients  = 8
	// e2eStarters call StartSession concurrently: the most calls in flight.
	e2eStarters = 512
	// e2ePerListener is the plays service's bound on a listener's open
	// sessions (services/plays/domain.DefaultMaxOpenSessions).
	e2ePerListener = 8
	// e2eRound spaces one session's heartbeats (the service refuses them
	// closer than 1 s); e2eFirstBeat is how long after its start a short
	// song's session sends the heartbeat that counts it.
	e2eRound     = 1010 * time.Millisecond
	e2eFirstBeat = 1050 * time.Millisecond
	e2eNode      = "node-1"
)

// e2eScenario measures the whole system through its public gateway (each
// call signed with the gateway's own key, as operators' tools do), first
// with every part in one `fanfare dev` process, then with every part its
// own OS process (internal/cluster), both in front of a real Kratos:
// sustained heartbeats per second in batches, the time from the heartbeat
// that counts a play to its reward committed in the FAN book at the
// issue's offered rate of counted plays, and each process's memory.
func e2eScenario(ctx context.Context, o Options) (*Result, error) {
	// The scenario runs inside the fanfare command: its own binary runs
	// the cluster's processes.
	bin, err := os.Executable()
	if err != nil {
		return nil, err
	}
	res := &Result{Scenario: "e2e", Pass: true, Floors: map[string]any{}, Figures: map[string]any{}}
	var p99 float64
	for _, mode := range []struct {
		name      string
		inProcess bool
	}{{"in_process", true}, {"distributed", false}} {
		o.Log("e2e: %s", mode.name)
		r, err := e2eMode(ctx, o, bin, mode.name, mode.inProcess)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode.name, err)
		}
		res.Figures[mode.name] = r.figures
		for _, f := range r.failures {
			res.Pass = false
			res.Failures = append(res.Failures, mode.name+": "+f)
		}
		if !mode.inProcess {
			p99 = r.p99
		}
	}
	res.atMost("distributed.play_to_payout.p99_ms", p99, e2eP99GoalMS)
	return res, nil
}

// e2eFigures are one mode's (or phase's) figures, the failures found and
// the play-to-payout p99 in milliseconds.
type e2eFigures struct {
	figures  map[string]any
	failures []string
	p99      float64
}

// e2eRun is one cluster under load.
type e2eRun struct {
	o     Options
	c     *cluster.Cluster
	key   ed25519.PrivateKey
	httpc *http.Client
	url   string
	node  playsv1connect.PlaysServiceClient
	long  []string
	short []string
	// listeners have their accounts open for the latency phase.
	listeners int
}

// as signs calls as the identity id with roles, with the gateway's key.
func (r *e2eRun) as(id string, roles ...string) connect.ClientOption {
	return connect.WithClientOptions(
		connect.WithInterceptors(identity.CallAs(r.key, identity.Identity{ID: id, Roles: roles})),
		// The answers to 1,000 heartbeats are not worth gzip's CPU on a LAN.
		connect.WithAcceptCompression("gzip", nil, nil))
}

func e2eMode(ctx context.Context, o Options, bin, mode string, inProcess bool) (*e2eFigures, error) {
	// A fresh cluster each time: sessions left open by an earlier run
	// would count against the listeners' bound.
	dir := filepath.Join(o.DataDir, "e2e-"+mode)
	temp := o.DataDir == ""
	var err error
	if temp {
		dir, err = os.MkdirTemp("", "fanfare-bench-e2e-"+mode+"-")
	} else {
		err = os.RemoveAll(dir)
	}
	if err != nil {
		return nil, err
	}
	began := time.Now()
	c, err := cluster.Start(ctx, cluster.Config{Binary: bin, Dir: dir, InProcess: inProcess, Log: o.Log,
		// Thousands of calls a second come from one node identity.
		Env: []string{"FANFARE_RATE_LIMIT=1000000", "FANFARE_RATE_BURST=1000000", "FANFARE_LOG_FORMAT=text"}})
	if err != nil {
		return nil, fmt.Errorf("start the cluster (logs in %s): %w", filepath.Join(dir, "logs"), err)
	}
	startup := time.Since(began)
	o.Log("e2e: %d processes ready in %s", len(c.Procs()), startup.Round(time.Millisecond))
	failed := true
	defer func() {
		c.Close()
		if temp && !failed {
			os.RemoveAll(dir)
		} else if failed {
			o.Log("e2e: the cluster's logs are in %s", filepath.Join(dir, "logs"))
		}
	}()
	key, err := identity.LoadOrCreateKey(filepath.Join(dir, "keys", "identity.key"))
	if err != nil {
		return nil, err
	}
	r := &e2eRun{o: o, c: c, key: key, url: c.GatewayURL(),
		// HTTP/2: hundreds of calls in flight share a few connections
		// (faster here than HTTP/1.1's connection per call).
		httpc: &http.Client{Transport: h2c.Transport()}}
	defer r.httpc.CloseIdleConnections()
	r.node = playsv1connect.NewPlaysServiceClient(r.httpc, r.url, r.as(e2eNode, identity.RoleNode))

	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	figs := map[string]any{"processes": len(c.Procs()), "startup_sec": round1(startup.Seconds())}
	if figs["heartbeats"], err = r.heartbeats(ctx); err != nil {
		return nil, fmt.Errorf("heartbeats: %w", err)
	}
	lat, err := r.payouts(ctx, e2ePlaysPerSec)
	if err != nil {
		return nil, fmt.Errorf("play to payout: %w", err)
	}
	figs["play_to_payout"] = lat.figures
	rss := c.RSS()
	mb := map[string]float64{}
	var total int64
	for name, n := range rss {
		mb[name] = round1(float64(n) / (1 << 20))
		total += n
	}
	figs["rss_mb"] = map[string]any{"processes": mb, "total": round1(float64(total) / (1 << 20))}
	if err := c.Exited(); err != nil {
		return nil, err
	}
	failed = false
	return &e2eFigures{figures: figs, failures: lat.failures, p99: lat.p99}, nil
}

// setup registers the songs as an artist, opens the accounts of the node,
// the artist and the listeners the latency phase rewards, and waits until
// the plays service knows every song.
func (r *e2eRun) setup(ctx context.Context) error {
	t0 := time.Now()
	const artist = "artist-1"
	open := func(ctx context.Context, id string, roles ...string) error {
		_, err := accountsv1connect.NewAccountsServiceClient(r.httpc, r.url, r.as(id, roles...)).
			OpenAccount(ctx, connect.NewRequest(&accountsv1.OpenAccountRequest{}))
		if err != nil {
			return fmt.Errorf("open the accounts of %s: %w", id, err)
		}
		return nil
	}
	if err := open(ctx, artist, identity.RoleArtist); err != nil {
		return err
	}
	if err := open(ctx, e2eNode, identity.RoleNode); err != nil {
		return err
	}
	songs := songsv1connect.NewSongsServiceClient(r.httpc, r.url, r.as(artist, identity.RoleArtist))
	r.long, r.short = make([]string, e2eSongs), make([]string, e2eSongs)
	err := parallel(ctx, 8, 2*e2eSongs, func(i int) error {
		title, ms, ids := fmt.Sprint("Long ", i), uint64(e2eLongSongMs), r.long
		if i >= e2eSongs {
			title, ms, ids = fmt.Sprint("Short ", i-e2eSongs), e2eShortSongMs, r.short
		}
		h := sha256.Sum256([]byte(title))
		resp, err := songs.RegisterSong(ctx, connect.NewRequest(&songsv1.RegisterSongRequest{RequestId: fmt.Sprint("e2e-", i),
			DownloadLocation: "https://cdn.example/" + hex.EncodeToString(h[:8]),
			Description: &songsv1.Description{Title: title, Artists: []string{"Bench"}, Album: "E2E", Genre: "Pop", Year: 2026,
				DurationMs: ms, Format: "audio/mpeg", ContentHash: hex.EncodeToString(h[:]),
				Fingerprint: songsdomain.CompressFingerprint(1, fpBenchFingerprint(1<<41+uint64(i), nil)),
				Splits:      []*songsv1.Split{{PayeeId: artist, Percent: "100"}}, Price: "0.99", CopyrightHolder: "Bench"}}))
		if err != nil {
			return fmt.Errorf("register %q: %w", title, err)
		}
		if resp.Msg.Outcome != songsv1.Outcome_OUTCOME_REGISTERED {
			return fmt.Errorf("register %q: %s (matched %s)", title, resp.Msg.Outcome, resp.Msg.MatchedSongId)
		}
		ids[i%e2eSongs] = resp.Msg.SongId
		return nil
	})
	if err != nil {
		return err
	}
	// The latency phase's listeners (and the warm-up's) are rewarded, so
	// their wallets must be open.
	r.listeners = e2eListeners(e2ePlaysPerSec, r.o.Duration)
	if err := parallel(ctx, 32, r.listeners+1, func(i int) error {
		return open(ctx, payoutListener(i-1))
	}); err != nil {
		return err
	}
	r.o.Log("e2e: %d songs registered, %d accounts opened in %s", 2*e2eSongs, r.listeners+3, time.Since(t0).Round(time.Millisecond))
	// The plays service learns songs from the registrar's events: a
	// session opens once it knows the song (one probe listener per song).
	t1 := time.Now()
	all := append(append([]string(nil), r.long...), r.short...)
	err = parallel(ctx, 16, len(all), func(i int) error {
		deadline := time.Now().Add(60 * time.Second)
		for {
			_, err := r.node.StartSession(ctx, connect.NewRequest(&playsv1.StartSessionRequest{SongId: all[i],
				ListenerId: fmt.Sprint("probe-", i), NodeId: e2eNode}))
			switch connect.CodeOf(err) {
			case connect.CodeNotFound, connect.CodeFailedPrecondition, connect.CodeUnavailable:
				if time.Now().After(deadline) {
					return fmt.Errorf("the plays service does not know song %s after 60s: %w", all[i], err)
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if err != nil {
				return fmt.Errorf("start a session of song %s: %w", all[i], err)
			}
			return nil
		}
	})
	if err != nil {
		return err
	}
	r.o.Log("e2e: the plays service knows every song after %s", time.Since(t1).Round(time.Millisecond))
	return nil
}

// e2eListeners is how many listeners the latency phase needs: its
// sessions stay open (until they expire) after they count.
func e2eListeners(rate float64, d time.Duration) int {
	return int(math.Ceil(rate * d.Seconds() / e2ePerListener))
}

// payoutListener is the latency phase's listener i (-1: the warm-up's).
func payoutListener(i int) string {
	if i < 0 {
		return "warm-listener"
	}
	return fmt.Sprint("listener-", i)
}

// heartbeats opens e2eSessions sessions of long songs as the node, then
// feeds every one a heartbeat each second (batches of e2eBatch sessions,
// each batch sent once a second has passed since its previous answer)
// from e2eClients concurrent clients, for the phase's duration.
func (r *e2eRun) heartbeats(ctx context.Context) (map[string]any, error) {
	ids := make([]string, e2eSessions)
	opened := make([]time.Time, e2eSessions)
	t0 := time.Now()
	err := parallel(ctx, e2eStarters, e2eSessions, func(i int) error {
		resp, err := r.node.StartSession(ctx, connect.NewRequest(&playsv1.StartSessionRequest{SongId: r.long[i%len(r.long)],
			ListenerId: fmt.Sprint("hb-listener-", i/e2ePerListener), NodeId: e2eNode}))
		if err != nil {
			return fmt.Errorf("start session %d: %w", i, err)
		}
		ids[i], opened[i] = resp.Msg.SessionId, time.Now()
		return nil
	})
	if err != nil {
		return nil, err
	}
	openSec := time.Since(t0).Seconds()
	r.o.Log("e2e: %d sessions opened in %.1fs; heartbeats for %s", e2eSessions, openSec, r.o.Duration)

	type batch struct {
		ids  []string
		seq  uint64
		next time.Time // not before: a second after the previous answer
	}
	queue := make(chan *batch, e2eSessions/e2eBatch+1)
	for b := 0; b < e2eSessions; b += e2eBatch {
		end := min(b+e2eBatch, e2eSessions)
		last := opened[b]
		for _, t := range opened[b:end] {
			if t.After(last) {
				last = t
			}
		}
		queue <- &batch{ids: ids[b:end], next: last.Add(e2eRound)}
	}
	var (
		accepted, refused, waits atomic.Int64
		mu                       sync.Mutex
		reasons                  = map[string]int64{}
		lastAnswer               time.Time
		callLat                  []time.Duration
		calls                    []span
	)
	start := time.Now()
	end := start.Add(r.o.Duration)
	g, gctx := errgroup.WithContext(ctx)
	for range e2eClients {
		g.Go(func() error {
			for {
				var b *batch
				select {
				case b = <-queue:
				case <-time.After(time.Until(end)):
					return nil
				}
				if d := time.Until(b.next); d > 0 {
					waits.Add(1)
					time.Sleep(d)
				}
				if time.Now().After(end) {
					return nil
				}
				b.seq++
				from := (b.seq - 1) * 1000
				req := &playsv1.RecordHeartbeatsRequest{Heartbeats: make([]*playsv1.Heartbeat, len(b.ids))}
				for i, id := range b.ids {
					req.Heartbeats[i] = &playsv1.Heartbeat{SessionId: id, Seq: b.seq, FromMs: from, ToMs: from + 1000}
				}
				sent := time.Now()
				resp, err := r.node.RecordHeartbeats(gctx, connect.NewRequest(req))
				if err != nil {
					return fmt.Errorf("record heartbeats: %w", err)
				}
				now := time.Now()
				b.next = now.Add(e2eRound)
				mu.Lock()
				for _, res := range resp.Msg.Results {
					if res.Accepted {
						accepted.Add(1)
					} else {
						refused.Add(1)
						reasons[res.Reason]++
					}
				}
				if now.After(lastAnswer) {
					lastAnswer = now
				}
				callLat = append(callLat, now.Sub(sent))
				calls = append(calls, span{sent, now})
				mu.Unlock()
				queue <- b
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	elapsed := lastAnswer.Sub(start)
	sortDurations(callLat)
	rate := float64(accepted.Load()) / elapsed.Seconds()
	busy := busyTime(calls)
	// Batches that had to wait for their second to pass: the sessions, not
	// the system, bounded the rate over the wall clock.
	bound := "system"
	if waits.Load() > 0 {
		bound = "sessions"
	}
	r.o.Log("e2e: %.0f heartbeats/s accepted (%.0f/s while calls were in flight)", rate, float64(accepted.Load())/busy.Seconds())
	return map[string]any{"accepted": accepted.Load(), "refused": refused.Load(), "refused_by_reason": reasons, "per_sec": round1(rate),
		"seconds": round1(elapsed.Seconds()), "sessions": e2eSessions, "batch": e2eBatch, "clients": e2eClients,
		"calls": len(callLat), "call_p50_ms": percentileMS(callLat, 0.5), "call_p99_ms": percentileMS(callLat, 0.99),
		"paced_waits": waits.Load(), "bound_by": bound,
		// Accepted per second of time with at least one call in flight:
		// what the system did while it had work.
		"busy_seconds": round1(busy.Seconds()), "busy_per_sec": round1(float64(accepted.Load()) / busy.Seconds()),
		"session_starts_per_sec": round1(float64(e2eSessions) / openSec),
	}, nil
}

// span is one call, from sent to answered.
type span struct{ from, to time.Time }

// busyTime is the time covered by at least one of the spans.
func busyTime(spans []span) time.Duration {
	sort.Slice(spans, func(i, j int) bool { return spans[i].from.Before(spans[j].from) })
	var total time.Duration
	var cur span
	for i, s := range spans {
		switch {
		case i == 0:
			cur = s
		case !s.from.After(cur.to):
			if s.to.After(cur.to) {
				cur.to = s.to
			}
		default:
			total += cur.to.Sub(cur.from)
			cur = s
		}
	}
	if len(spans) > 0 {
		total += cur.to.Sub(cur.from)
	}
	return total
}

// payoutTracker pairs each counted play's heartbeat answer with its reward
// committed in the FAN book (whichever is seen first).
type payoutTracker struct {
	mu                      sync.Mutex
	counted                 map[string]time.Time // play id → the answer that counted it
	committed               map[string]time.Time // committed before its answer was seen
	lat                     []time.Duration
	firstCommit, lastCommit time.Time
}

func (t *payoutTracker) count(play string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.committed[play]; ok {
		delete(t.committed, play)
		t.lat = append(t.lat, max(c.Sub(at), 0))
		return
	}
	t.counted[play] = at
}

func (t *payoutTracker) commit(play string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.firstCommit.IsZero() {
		t.firstCommit = at
	}
	t.lastCommit = at
	if c, ok := t.counted[play]; ok {
		delete(t.counted, play)
		t.lat = append(t.lat, at.Sub(c))
		return
	}
	t.committed[play] = at
}

func (t *payoutTracker) waiting() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.counted)
}

// follow records every reward committed in the FAN book until ctx ends.
func (t *payoutTracker) follow(ctx context.Context, url string) error {
	client, err := eventstore.Connect(url)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { client.Close() })
	if err := followCommits(ctx, client, "book-FAN", t.commit); err != nil {
		client.Close()
		return err
	}
	return nil
}

// payouts offers rate counted plays a second for the phase's duration:
// sessions of 2 s songs started on that schedule (from at most
// e2eStarters calls in flight; a system slower than the schedule starts
// fewer), each counted by its first heartbeat {0–2000 ms}, sent in
// batches e2eFirstBeat after the session started. A play's latency runs
// from the answer to the heartbeat that counted it to its reward
// (transaction id = play id) seen committed in the FAN book's stream.
func (r *e2eRun) payouts(ctx context.Context, rate float64) (*e2eFigures, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &payoutTracker{counted: map[string]time.Time{}, committed: map[string]time.Time{}}
	if err := t.follow(ctx, r.c.EventStoreURL()); err != nil {
		return nil, err
	}
	beat := func(ctx context.Context, ids []string) (*playsv1.RecordHeartbeatsResponse, time.Time, error) {
		req := &playsv1.RecordHeartbeatsRequest{Heartbeats: make([]*playsv1.Heartbeat, len(ids))}
		for i, id := range ids {
			req.Heartbeats[i] = &playsv1.Heartbeat{SessionId: id, Seq: 1, FromMs: 0, ToMs: e2eShortSongMs}
		}
		resp, err := r.node.RecordHeartbeats(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, time.Time{}, err
		}
		return resp.Msg, time.Now(), nil
	}

	// A warm-up play goes the whole way first: every consumer is running
	// before the clock starts.
	warm, err := r.node.StartSession(ctx, connect.NewRequest(&playsv1.StartSessionRequest{SongId: r.short[0],
		ListenerId: payoutListener(-1), NodeId: e2eNode}))
	if err != nil {
		return nil, fmt.Errorf("warm-up session: %w", err)
	}
	time.Sleep(e2eFirstBeat)
	wr, at, err := beat(ctx, []string{warm.Msg.SessionId})
	if err != nil {
		return nil, fmt.Errorf("warm-up heartbeat: %w", err)
	}
	if res := wr.Results[0]; res.PlayNumber == 0 {
		return nil, fmt.Errorf("the warm-up heartbeat did not count a play: %v", res)
	}
	t.count("play-"+warm.Msg.SessionId, at)
	for deadline := time.Now().Add(e2eRewardWait); t.waiting() > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the warm-up play was not rewarded within %s", e2eRewardWait)
		}
	}
	t.mu.Lock()
	warmup := t.lat[0]
	t.lat, t.firstCommit = t.lat[:0], time.Time{}
	t.mu.Unlock()

	// Starters open sessions on schedule (session i is due at i/rate);
	// each goes to the heartbeat queue with the time it opened.
	type started struct {
		id string
		at time.Time
	}
	planned := int(rate * r.o.Duration.Seconds())
	planned = min(planned, r.listeners*e2ePerListener)
	r.o.Log("e2e: offering %.0f counted plays/s for %s", rate, r.o.Duration)
	queue := make(chan started, planned)
	var (
		next               atomic.Int64
		emu                sync.Mutex
		startErrs          = map[string]int64{}
		startLast          time.Time
		startLat           []time.Duration
		starters, dispatch sync.WaitGroup
	)
	t0 := time.Now()
	for range e2eStarters {
		starters.Add(1)
		go func() {
			defer starters.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= planned || ctx.Err() != nil || time.Since(t0) >= r.o.Duration {
					return
				}
				due := t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				sent := time.Now()
				resp, err := r.node.StartSession(ctx, connect.NewRequest(&playsv1.StartSessionRequest{SongId: r.short[i%len(r.short)],
					ListenerId: payoutListener(i / e2ePerListener), NodeId: e2eNode}))
				now := time.Now()
				emu.Lock()
				if err != nil {
					startErrs[connect.CodeOf(err).String()]++
				} else {
					startLat = append(startLat, now.Sub(sent))
					startLast = now
				}
				emu.Unlock()
				if err == nil {
					queue <- started{resp.Msg.SessionId, now}
				}
			}
		}()
	}
	go func() { starters.Wait(); close(queue) }()

	// The dispatcher sends each session's heartbeat once it is due, in
	// batches of up to e2eBatch, from e2eClients concurrent clients.
	var (
		counted, notCounted, refused atomic.Int64
		reasons                      = map[string]int64{}
		firstCount, lastCount        time.Time
		beatErr                      error
	)
	batches := make(chan []string, 64)
	for range e2eClients {
		dispatch.Add(1)
		go func() {
			defer dispatch.Done()
			for ids := range batches {
				resp, at, err := beat(ctx, ids)
				if err != nil {
					emu.Lock()
					beatErr = err
					emu.Unlock()
					continue
				}
				for _, res := range resp.Results {
					switch {
					case !res.Accepted:
						refused.Add(1)
						emu.Lock()
						reasons[res.Reason]++
						emu.Unlock()
					case res.PlayNumber == 0:
						notCounted.Add(1)
					default:
						counted.Add(1)
						t.count("play-"+res.SessionId, at)
					}
				}
				emu.Lock()
				if firstCount.IsZero() || at.Before(firstCount) {
					firstCount = at
				}
				if at.After(lastCount) {
					lastCount = at
				}
				emu.Unlock()
			}
		}()
	}
	var pending []started
	tick := time.NewTicker(5 * time.Millisecond)
	for open := true; open || len(pending) > 0; {
		select {
		case s, ok := <-queue:
			if !ok {
				open, queue = false, nil
				continue
			}
			pending = append(pending, s)
			continue
		case <-tick.C:
		}
		n := 0
		for n < len(pending) && time.Since(pending[n].at) >= e2eFirstBeat {
			n++
		}
		for b := 0; b < n; b += e2eBatch {
			ids := make([]string, 0, e2eBatch)
			for _, s := range pending[b:min(b+e2eBatch, n)] {
				ids = append(ids, s.id)
			}
			batches <- ids
		}
		pending = pending[n:]
	}
	tick.Stop()
	close(batches)
	dispatch.Wait()
	if beatErr != nil && counted.Load() == 0 {
		return nil, fmt.Errorf("record heartbeats: %w", beatErr)
	}

	r.o.Log("e2e: %d plays counted; waiting for their rewards", counted.Load())
	deadline := time.Now().Add(e2eRewardWait)
	for t.waiting() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	t.mu.Lock()
	defer t.mu.Unlock()
	lat := append([]time.Duration(nil), t.lat...)
	sortDurations(lat)
	out := &e2eFigures{p99: percentileMS(lat, 0.99)}
	emu.Lock()
	defer emu.Unlock()
	sortDurations(startLat)
	startSpan := startLast.Sub(t0).Seconds()
	countSpan := lastCount.Sub(firstCount).Seconds()
	rewardSpan := t.lastCommit.Sub(t.firstCommit).Seconds()
	perSec := func(n int64, sec float64) float64 {
		if sec <= 0 {
			return 0
		}
		return round1(float64(n) / sec)
	}
	out.figures = map[string]any{
		"offered_plays_per_sec": rate, "planned_sessions": planned, "max_in_flight": e2eStarters,
		"sessions_started": len(startLat), "session_starts_per_sec": perSec(int64(len(startLat)), startSpan),
		"start_errors": startErrs, "start_p50_ms": percentileMS(startLat, 0.5), "start_p99_ms": percentileMS(startLat, 0.99),
		"counted": counted.Load(), "counted_plays_per_sec": perSec(counted.Load(), countSpan),
		"refused": refused.Load(), "refused_by_reason": reasons, "accepted_not_counted": notCounted.Load(),
		"rewarded": len(lat), "rewards_per_sec": perSec(int64(len(lat)), rewardSpan), "unrewarded": len(t.counted),
		"p50_ms": percentileMS(lat, 0.50), "p99_ms": out.p99, "max_ms": percentileMS(lat, 1),
		"warmup_ms": float64(warmup.Microseconds()) / 1000,
		"path":      "heartbeat → gateway → plays (PlayCounted) → forwarder → Kafka → royalty saga → forwarder → Kafka → accounts → FAN book committed → subscriber",
	}
	if n := len(t.counted); n > 0 {
		out.failures = append(out.failures, fmt.Sprintf("%d of %d counted plays not rewarded within %s", n, counted.Load(), e2eRewardWait))
	}
	if beatErr != nil {
		out.failures = append(out.failures, fmt.Sprintf("a heartbeat batch failed: %v", beatErr))
	}
	if n := refused.Load() + notCounted.Load(); n > 0 {
		out.failures = append(out.failures, fmt.Sprintf("%d first heartbeats did not count their play", n))
	}
	return out, nil
}
