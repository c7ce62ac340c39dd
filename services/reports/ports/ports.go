// Package ports exposes the reports service: the Connect API and the
// events its projection is built from.
package ports

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/apperr"
	"github.com/fanfare/fanfare/internal/platform/identity"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	"github.com/fanfare/fanfare/internal/platform/money"
	reportsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/reports/v1/reportsv1connect"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/reports/app"
	"github.com/fanfare/fanfare/services/reports/domain"
	"github.com/fanfare/fanfare/services/reports/settlement"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Event applies a followed event to the projection. Every event the
// forwarder published says where it was stored; one that does not is an
// error (the projection could not tell whether it saw it before).
func Event(a *app.App) func(context.Context, proto.Message) error {
	return func(ctx context.Context, m proto.Message) error {
		src, ok := kafka.SourceOf(ctx)
		if !ok {
			return errors.New("reports: an event without the forwarder's stream and revision")
		}
		a.Apply(domain.Source{Stream: src.Stream, Revision: src.Revision, At: src.Envelope.OccurredAt}, m)
		return nil
	}
}

// Connect implements ReportsService.
type Connect struct {
	App *app.App
}

var _ reportsv1connect.ReportsServiceHandler = Connect{}

// readers may read anyone's dashboard and activity.
var readers = []string{identity.RoleFinance, identity.RoleAuditor}

// requireReader refuses a caller who is none of the readers.
func requireReader(ctx context.Context) error {
	who, err := identity.Caller(ctx)
	if err != nil {
		return err
	}
	return identity.RequireAny(who, readers...)
}

func mayRead(ctx context.Context, owner, what string) error {
	who, err := identity.Caller(ctx)
	if err != nil {
		return err
	}
	if who.ID == owner {
		return nil
	}
	if err := identity.RequireAny(who, readers...); err != nil {
		return apperr.New(apperr.PermissionDenied, "%s may not read %s: %v", who.ID, what, err)
	}
	return nil
}

func (c Connect) dashboard(ctx context.Context, artist string) (*reportsv1.ArtistDashboard, error) {
	if artist == "" {
		return nil, apperr.New(apperr.InvalidInput, "artist_id is required")
	}
	if err := mayRead(ctx, artist, "the dashboard of "+artist); err != nil {
		return nil, err
	}
	return dashboardProto(c.App.Dashboard(artist)), nil
}

func (c Connect) GetArtistDashboard(ctx context.Context, req *connect.Request[reportsv1.GetArtistDashboardRequest]) (*connect.Response[reportsv1.GetArtistDashboardResponse], error) {
	d, err := c.dashboard(ctx, req.Msg.ArtistId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&reportsv1.GetArtistDashboardResponse{Dashboard: d}), nil
}

func (c Connect) WatchArtistDashboard(ctx context.Context, req *connect.Request[reportsv1.WatchArtistDashboardRequest], stream *connect.ServerStream[reportsv1.WatchArtistDashboardResponse]) error {
	if _, err := c.dashboard(ctx, req.Msg.ArtistId); err != nil {
		return err
	}
	// Watch first, then read: a change between the two still wakes us.
	wake, stop := c.App.Watch(req.Msg.ArtistId)
	defer stop()
	for {
		if err := stream.Send(&reportsv1.WatchArtistDashboardResponse{Dashboard: dashboardProto(c.App.Dashboard(req.Msg.ArtistId))}); err != nil {
			return err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil
		}
	}
}

func (c Connect) GetPayeeActivity(ctx context.Context, req *connect.Request[reportsv1.GetPayeeActivityRequest]) (*connect.Response[reportsv1.GetPayeeActivityResponse], error) {
	id, err := accounts.ParseAccountID(req.Msg.AccountId)
	if err != nil {
		return nil, apperr.Wrap(apperr.InvalidInput, err)
	}
	if !id.User() {
		return nil, apperr.New(apperr.InvalidInput, "%s is not a wallet or an escrow", id.ID)
	}
	if err := mayRead(ctx, id.Owner, "the activity of "+id.ID); err != nil {
		return nil, err
	}
	asset, days := c.App.Activity(id.ID)
	res := &reportsv1.GetPayeeActivityResponse{AccountId: id.ID}
	for _, d := range days {
		res.Days = append(res.Days, &reportsv1.PayeeDay{Day: d.Day, Kind: d.Kind, Credits: amount(asset, d.Credits), Debits: amount(asset, d.Debits)})
	}
	return connect.NewResponse(res), nil
}

func (c Connect) ExportSettlement(ctx context.Context, req *connect.Request[reportsv1.ExportSettlementRequest], stream *connect.ServerStream[reportsv1.ExportSettlementResponse]) error {
	if err := requireReader(ctx); err != nil {
		return err
	}
	var opts settlement.Options
	var err error
	if opts.From, err = settlement.ParseDay(req.Msg.From); err != nil {
		return apperr.Wrap(apperr.InvalidInput, fmt.Errorf("from: %w", err))
	}
	if opts.To, err = settlement.ParseDay(req.Msg.To); err != nil {
		return apperr.Wrap(apperr.InvalidInput, fmt.Errorf("to: %w", err))
	}
	opts.Payees = req.Msg.Payees
	format := req.Msg.Format
	if format == "" {
		format = "csv"
	}
	if !settlement.ValidFormat(format) {
		return apperr.New(apperr.InvalidInput, "format %q is none of %v", format, settlement.Formats)
	}
	rep, err := settlement.Export(ctx, c.App.URL, opts, nil)
	switch {
	case errors.Is(err, settlement.ErrInvalid):
		return apperr.Wrap(apperr.InvalidInput, err)
	case errors.Is(err, settlement.ErrUnreconciled), errors.Is(err, settlement.ErrLogUnsound):
		return apperr.Wrap(apperr.Forbidden, err)
	case err != nil:
		return apperr.Wrap(apperr.Unavailable, err)
	}
	return settlement.Write(chunks{stream}, rep, format)
}

// chunks sends what is written to it as ExportSettlement messages (Write
// buffers 64 KiB at a time).
type chunks struct {
	stream *connect.ServerStream[reportsv1.ExportSettlementResponse]
}

func (c chunks) Write(p []byte) (int, error) {
	if err := c.stream.Send(&reportsv1.ExportSettlementResponse{Chunk: p}); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c Connect) RunAudit(ctx context.Context, _ *connect.Request[reportsv1.RunAuditRequest]) (*connect.Response[reportsv1.RunAuditResponse], error) {
	who, err := identity.Caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := identity.RequireAny(who, identity.RoleAuditor, identity.RoleFinance); err != nil {
		return nil, err
	}
	rep, err := c.App.Audit(ctx)
	if err != nil {
		return nil, err
	}
	res := &reportsv1.RunAuditResponse{Events: rep.Events, Hash: rep.Hash, Clean: rep.Clean(), Differences: rep.Differences, Violations: []string{}}
	for _, v := range rep.Violations {
		res.Violations = append(res.Violations, v.String())
	}
	for _, b := range rep.Books {
		res.Books = append(res.Books, &reportsv1.AuditBook{Asset: b.Asset, Accounts: uint64(len(b.Accounts)), Transactions: uint64(b.Transactions),
			Supply: amount(b.Asset, b.Supply.Circulating)})
	}
	return connect.NewResponse(res), nil
}

func (c Connect) ListPendingTransfers(ctx context.Context, req *connect.Request[reportsv1.ListPendingTransfersRequest]) (*connect.Response[reportsv1.ListPendingTransfersResponse], error) {
	if err := requireReader(ctx); err != nil {
		return nil, err
	}
	kind := req.Msg.Kind
	if kind != "" && kind != domain.TransferDeposit && kind != domain.TransferWithdrawal {
		return nil, apperr.New(apperr.InvalidInput, "kind %q is none of %q, %q or empty for both", kind, domain.TransferDeposit, domain.TransferWithdrawal)
	}
	res := &reportsv1.ListPendingTransfersResponse{Transfers: []*reportsv1.PendingTransfer{}}
	for _, t := range c.App.PendingTransfers(kind) {
		res.Transfers = append(res.Transfers, &reportsv1.PendingTransfer{Kind: t.Kind, Id: t.ID, AccountId: t.Account, Amount: amount(t.Asset, t.Amount),
			Rail: t.Rail, Reference: t.Reference, Destination: t.Destination, RequestedAt: timestamppb.New(t.RequestedAt)})
	}
	return connect.NewResponse(res), nil
}

var assets = money.DefaultAssets()

// amount is units of asset as decimal text.
func amount(asset string, units int64) *reportsv1.Amount {
	var scale uint8
	if a, err := assets.Lookup(asset); err == nil {
		scale = a.Scale
	}
	return &reportsv1.Amount{Asset: asset, Value: money.FormatUnits(units, scale)}
}

func dashboardProto(d domain.Dashboard) *reportsv1.ArtistDashboard {
	out := &reportsv1.ArtistDashboard{
		ArtistId:      d.ArtistID,
		FanEarned:     amount("FAN", d.FanEarned),
		FanEscrowed:   amount("FAN", d.FanEscrowed),
		Tips:          amount("USD", d.Tips),
		Purchases:     amount("USD", d.Purchases),
		Subscriptions: amount("USD", d.Subscriptions),
		Version:       d.Version,
	}
	for _, s := range d.Songs {
		out.Songs = append(out.Songs, &reportsv1.SongPlays{SongId: s.ID, Title: s.Title, DiscoveryPlays: s.Discovery, StandardPlays: s.Standard})
	}
	for _, e := range d.Earnings {
		out.EarningsByDay = append(out.EarningsByDay, &reportsv1.DayEarnings{Day: e.Day, Amount: amount(e.Asset, e.Amount)})
	}
	for _, c := range d.Campaigns {
		out.Campaigns = append(out.Campaigns, &reportsv1.CampaignProgress{CampaignId: c.ID, Goal: amount(c.Asset, c.Goal), Pledged: amount(c.Asset, c.Pledged), Status: c.Status})
	}
	return out
}
