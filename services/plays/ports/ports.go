// Package ports exposes the plays service: the Connect API and the song
// events it learns durations from.
package ports

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	playsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/plays/v1/playsv1connect"
	"github.com/fanfare/fanfare/services/plays/app"
	"github.com/fanfare/fanfare/services/plays/domain"
	"github.com/fanfare/fanfare/services/songs/songview"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// SongEvent keeps the song list current from the registrar's events.
func SongEvent(songs *app.Songs) func(context.Context, proto.Message) error {
	return func(_ context.Context, m proto.Message) error {
		if d := songview.Description(m); d != nil && d.DurationMs > 0 {
			songs.Put(d.SongId, app.Song{DurationMs: d.DurationMs})
		}
		return nil
	}
}

// Connect implements PlaysService.
type Connect struct {
	App *app.App
}

var _ playsv1connect.PlaysServiceHandler = Connect{}

func (c Connect) StartSession(ctx context.Context, req *connect.Request[playsv1.StartSessionRequest]) (*connect.Response[playsv1.StartSessionResponse], error) {
	id, expires, err := c.App.StartSession(ctx, req.Msg.SongId, req.Msg.ListenerId, req.Msg.NodeId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&playsv1.StartSessionResponse{SessionId: id, ExpiresAt: timestamppb.New(expires)}), nil
}

func (c Connect) RecordHeartbeats(ctx context.Context, req *connect.Request[playsv1.RecordHeartbeatsRequest]) (*connect.Response[playsv1.RecordHeartbeatsResponse], error) {
	in := make([]app.HeartbeatIn, len(req.Msg.Heartbeats))
	for i, h := range req.Msg.Heartbeats {
		in[i] = app.HeartbeatIn{SessionID: h.SessionId, Heartbeat: domain.Heartbeat{Seq: h.Seq, FromMs: h.FromMs, ToMs: h.ToMs}}
	}
	res, err := c.App.RecordHeartbeats(ctx, in)
	if err != nil {
		return nil, err
	}
	out := &playsv1.RecordHeartbeatsResponse{Results: make([]*playsv1.HeartbeatResult, len(res))}
	for i, r := range res {
		out.Results[i] = &playsv1.HeartbeatResult{SessionId: in[i].SessionID, Seq: in[i].Seq, Accepted: r.Status == domain.Accepted,
			Reason: r.Reason, CreditedMs: r.CreditedMs, CoverageMs: r.CoverageMs, PlayNumber: r.PlayNumber}
	}
	return connect.NewResponse(out), nil
}

func (c Connect) GetSession(ctx context.Context, req *connect.Request[playsv1.GetSessionRequest]) (*connect.Response[playsv1.GetSessionResponse], error) {
	v, err := c.App.GetSession(ctx, req.Msg.SessionId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&playsv1.GetSessionResponse{SessionId: v.ID, SongId: v.SongID, ListenerId: v.ListenerID, NodeId: v.NodeID,
		DurationMs: v.DurationMs, CoverageMs: v.CoverageMs, LastSeq: v.LastSeq, Counted: v.Counted, PlayId: v.PlayID, Expired: v.Expired,
		ExpiresAt: timestamppb.New(v.ExpiresAt)}), nil
}

// LedgerEvent keeps the burn gate current from the royalty saga's and the
// ledger's events, and applies a policy's play rules.
func LedgerEvent(a *app.App) func(context.Context, proto.Message) error {
	return func(ctx context.Context, m proto.Message) error {
		switch e := m.(type) {
		case *eventsv1.BurnRateChanged:
			a.Burns.SetBurn(e.Burn.GetUnits())
		case *eventsv1.BookBatchAppended:
			a.Burns.FAN.Apply(e)
		case *eventsv1.PolicyVersioned:
			if r := e.GetPolicy().GetRewards(); r != nil {
				a.Burns.SetDiscoveryMax(r.DiscoveryMaxPlayNumber)
			}
			if p := e.GetPolicy().GetPlays(); p != nil {
				rules, err := domain.RulesFromProto(p)
				if err != nil {
					return fmt.Errorf("plays: policy v%d: %w", e.Version, err)
				}
				return a.ApplyPolicy(ctx, e.Version, rules)
			}
		}
		return nil
	}
}
