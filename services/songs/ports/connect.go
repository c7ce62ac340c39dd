// Package ports exposes the registrar: the Connect API and the Kafka
// handlers that reveal and unlock download locations.
package ports

import (
	"context"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/money"
	songsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/songs/v1/songsv1connect"
	"github.com/fanfare/fanfare/services/songs/adapters"
	"github.com/fanfare/fanfare/services/songs/app"
)

// Connect implements SongsService on the application layer; errors go out
// through apperr's interceptor.
type Connect struct {
	App *app.App
}

var _ songsv1connect.SongsServiceHandler = Connect{}

// Similarity formats parts per million as a 0–1 decimal with 4 places.
func Similarity(ppm uint32) string {
	return money.FormatUnits(int64(ppm/100), 4)
}

func (c Connect) RegisterSong(ctx context.Context, req *connect.Request[songsv1.RegisterSongRequest]) (*connect.Response[songsv1.RegisterSongResponse], error) {
	r, err := c.App.RegisterSong(ctx, req.Msg.RequestId, req.Msg.Description, req.Msg.DownloadLocation)
	if err != nil {
		return nil, err
	}
	out := &songsv1.RegisterSongResponse{Outcome: r.Outcome, SongId: r.SongID, Version: r.Version, MatchedSongId: r.MatchedSongID, Offset: r.Offset}
	if r.MatchedSongID != "" {
		out.Similarity = Similarity(r.SimilarityPPM)
	}
	return connect.NewResponse(out), nil
}

func (c Connect) UpdateSong(ctx context.Context, req *connect.Request[songsv1.UpdateSongRequest]) (*connect.Response[songsv1.UpdateSongResponse], error) {
	v, err := c.App.UpdateSong(ctx, req.Msg.SongId, req.Msg.RequestId, req.Msg.Description)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&songsv1.UpdateSongResponse{Version: v}), nil
}

func (c Connect) GetSong(ctx context.Context, req *connect.Request[songsv1.GetSongRequest]) (*connect.Response[songsv1.GetSongResponse], error) {
	s, err := c.App.GetSong(ctx, req.Msg.SongId, req.Msg.Version)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&songsv1.GetSongResponse{Song: s}), nil
}

func (c Connect) GetSignedDescription(ctx context.Context, req *connect.Request[songsv1.GetSignedDescriptionRequest]) (*connect.Response[songsv1.GetSignedDescriptionResponse], error) {
	s, err := c.App.GetSignedDescription(ctx, req.Msg.SongId, req.Msg.Version)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&songsv1.GetSignedDescriptionResponse{Canonical: s.Canonical, Signature: s.Signature, PublicKey: s.PublicKey, Version: s.Version}), nil
}

func (c Connect) entries(es []adapters.Entry) []*songsv1.Song {
	out := make([]*songsv1.Song, 0, len(es))
	for _, e := range es {
		out = append(out, c.App.EntrySong(e))
	}
	return out
}

func (c Connect) SearchSongs(ctx context.Context, req *connect.Request[songsv1.SearchSongsRequest]) (*connect.Response[songsv1.SearchSongsResponse], error) {
	es, next, err := c.App.SearchSongs(ctx, req.Msg.Query, req.Msg.Field, int(req.Msg.PageSize), req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&songsv1.SearchSongsResponse{Songs: c.entries(es), NextPageToken: next}), nil
}

func (c Connect) ListDisputes(ctx context.Context, req *connect.Request[songsv1.ListDisputesRequest]) (*connect.Response[songsv1.ListDisputesResponse], error) {
	es, next, err := c.App.ListDisputes(ctx, int(req.Msg.PageSize), req.Msg.PageToken)
	if err != nil {
		return nil, err
	}
	out := &songsv1.ListDisputesResponse{NextPageToken: next}
	for _, e := range es {
		out.Disputes = append(out.Disputes, &songsv1.Dispute{Song: c.App.EntrySong(e), MatchedSongId: e.Dispute.MatchedSongID,
			Similarity: Similarity(e.Dispute.SimilarityPPM), Offset: e.Dispute.Offset})
	}
	return connect.NewResponse(out), nil
}

func (c Connect) ResolveDispute(ctx context.Context, req *connect.Request[songsv1.ResolveDisputeRequest]) (*connect.Response[songsv1.ResolveDisputeResponse], error) {
	id, status, err := c.App.ResolveDispute(ctx, req.Msg.SongId, req.Msg.Decision, req.Msg.Note)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&songsv1.ResolveDisputeResponse{SongId: id, Status: status.String()}), nil
}

func (c Connect) GetRegistrarKeys(ctx context.Context, _ *connect.Request[songsv1.GetRegistrarKeysRequest]) (*connect.Response[songsv1.GetRegistrarKeysResponse], error) {
	sign, box := c.App.PublicKeys()
	return connect.NewResponse(&songsv1.GetRegistrarKeysResponse{SigningKey: sign, BoxKey: box}), nil
}

func (c Connect) GetDownloadLocation(ctx context.Context, req *connect.Request[songsv1.GetDownloadLocationRequest]) (*connect.Response[songsv1.GetDownloadLocationResponse], error) {
	loc, reason, err := c.App.GetDownloadLocation(ctx, req.Msg.SongId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&songsv1.GetDownloadLocationResponse{Location: loc, Reason: reason}), nil
}
