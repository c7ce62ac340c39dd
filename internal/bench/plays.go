package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/identity"
	playsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1/playsv1connect"
	"github.com/fanfare/fanfare/services/plays"
	"github.com/fanfare/fanfare/services/plays/app"
	"github.com/google/uuid"
)

func init() { register("plays", playsScenario) }

// playsScenario measures heartbeats ingested per second through the plays
// service's Connect API over HTTP, in batches of 1,000 from 4 concurrent
// clients, every batch fsync'd in the event store (with the forwarder
// publishing the log to Kafka meanwhile). Heartbeats are 10 s apart on a
// simulated clock, so every one is accepted and sessions count as they
// pass 50%. Then, at a steady 2,000 counted plays/s, it measures the time
// from PlayCounted to the reward committed in the ledger.
func playsScenario(ctx context.Context, o Options) (*Result, error) {
	st, err := startStack(ctx, "plays")
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, key, _ := ed25519.GenerateKey(nil)
	var simNow atomic.Int64
	simNow.Store(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, simNow.Load()) }
	svc, err := plays.New(ctx, plays.Config{Store: st.store, IdentityKey: key.Public().(ed25519.PublicKey), Now: now, ExpireEvery: time.Hour})
	if err != nil {
		return nil, err
	}
	svcDone := make(chan error, 1)
	go func() { svcDone <- svc.Run(ctx) }()
	url, stopServing, err := serve(svc.Handler())
	if err != nil {
		return nil, err
	}
	defer stopServing()
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	// Players feed their sessions through their serving node.
	client := playsv1connect.NewPlaysServiceClient(httpc, url, connect.WithInterceptors(identity.CallAs(key, identity.Identity{ID: "node-1", Roles: []string{identity.RoleNode}})))

	const songs, sessions, batch, clients = 200, 20_000, 1000, 4
	songIDs := make([]string, songs)
	for i := range songIDs {
		songIDs[i] = uuid.NewString()
		svc.App.Songs.Put(songIDs[i], app.Song{DurationMs: 200_000})
	}
	ids := make([]string, sessions)
	o.Log("opening %d sessions of %d songs", sessions, songs)
	var wg sync.WaitGroup
	var openErr atomic.Value
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < sessions; i += clients {
				r, err := client.StartSession(ctx, connect.NewRequest(&playsv1.StartSessionRequest{SongId: songIDs[i%songs],
					ListenerId: fmt.Sprint("listener-", i), NodeId: "node-1"}))
				if err != nil {
					openErr.Store(err)
					return
				}
				ids[i] = r.Msg.SessionId
			}
		}()
	}
	wg.Wait()
	if err, ok := openErr.Load().(error); ok {
		return nil, fmt.Errorf("start session: %w", err)
	}

	var accepted, refused, counted atomic.Int64
	var failed atomic.Value
	start := time.Now()
	rounds := 0
	for time.Since(start) < o.Duration || rounds < 3 {
		rounds++
		simNow.Add(int64(10 * time.Second))
		from := uint64((rounds - 1) * 10_000 % 200_000)
		work := make(chan int, sessions/batch)
		for b := 0; b < sessions; b += batch {
			work <- b
		}
		close(work)
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range work {
					req := &playsv1.RecordHeartbeatsRequest{Heartbeats: make([]*playsv1.Heartbeat, 0, batch)}
					for _, id := range ids[b : b+batch] {
						req.Heartbeats = append(req.Heartbeats, &playsv1.Heartbeat{SessionId: id, Seq: uint64(rounds), FromMs: from, ToMs: from + 10_000})
					}
					r, err := client.RecordHeartbeats(ctx, connect.NewRequest(req))
					if err != nil {
						failed.Store(err)
						return
					}
					for _, res := range r.Msg.Results {
						if res.Accepted {
							accepted.Add(1)
						} else {
							refused.Add(1)
						}
						if res.PlayNumber > 0 {
							counted.Add(1)
						}
					}
				}
			}()
		}
		wg.Wait()
		if err, ok := failed.Load().(error); ok {
			return nil, fmt.Errorf("record heartbeats: %w", err)
		}
	}
	elapsed := time.Since(start)
	rate := float64(accepted.Load()) / elapsed.Seconds()
	res := &Result{Scenario: "plays", Pass: true, Floors: map[string]any{}, Figures: map[string]any{
		"heartbeats": map[string]any{"accepted": accepted.Load(), "refused": refused.Load(), "per_sec": round1(rate),
			"batch": batch, "clients": clients, "sessions": sessions, "songs": songs, "rounds": rounds, "seconds": round1(elapsed.Seconds())},
		"plays_counted": counted.Load(),
	}}
	res.atLeast("heartbeats.per_sec", rate, 50_000)

	// A fresh stack: the plays above were of songs only the plays service
	// was told about, which the saga would wait for.
	st2, err := startStack(ctx, "rewards")
	if err != nil {
		return nil, err
	}
	defer st2.Close()
	const playRate = 2000
	lat, plays, err := rewardLatency(ctx, st2, playRate, o.Duration, o.Log)
	if err != nil {
		return nil, fmt.Errorf("reward latency: %w", err)
	}
	p99 := percentileMS(lat, 0.99)
	res.Figures["reward_latency"] = map[string]any{"plays_per_sec": playRate, "plays": plays, "rewarded": len(lat),
		"p50_ms": percentileMS(lat, 0.50), "p99_ms": p99, "max_ms": percentileMS(lat, 1),
		"path": "PlayCounted appended → forwarder → Kafka → royalty saga → forwarder → Kafka → accounts → FAN book committed"}
	res.atMost("reward_latency.p99_ms", p99, 500)
	if refused.Load() > 0 {
		res.Pass = false
		res.Failures = append(res.Failures, fmt.Sprintf("%d heartbeats refused; every one was valid", refused.Load()))
	}
	cancel()
	if err := <-svcDone; err != nil {
		return nil, err
	}
	return res, nil
}
