// Package ports exposes the tipping service: the Connect API and the Kafka
// handlers.
package ports

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/waiters"
	tippingv1 "github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/tipping/v1/tippingv1connect"
	"github.com/fanfare/fanfare/services/tipping/app"
	"github.com/fanfare/fanfare/services/tipping/domain"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Connect implements TippingService.
type Connect struct {
	App *app.App
}

var _ tippingv1connect.TippingServiceHandler = Connect{}

var statuses = map[domain.Status]tippingv1.Status{
	domain.Pending: tippingv1.Status_STATUS_PENDING, domain.Completed: tippingv1.Status_STATUS_COMPLETED, domain.Failed: tippingv1.Status_STATUS_FAILED,
}

func tip(t domain.Tip) *tippingv1.Tip {
	out := &tippingv1.Tip{TipId: t.ID, SongId: t.SongID, Amount: domain.FormatUSD(t.Amount), Status: statuses[t.Status],
		Source: domain.SourceName(t.Source)}
	if t.Status == domain.Failed {
		out.FailureReason, out.Detail = domain.ReasonName(t.Reason), t.Detail
	}
	return out
}

func (c Connect) Tip(ctx context.Context, req *connect.Request[tippingv1.TipRequest]) (*connect.Response[tippingv1.TipResponse], error) {
	t, err := c.App.Tip(ctx, req.Msg.RequestId, req.Msg.SongId, req.Msg.Amount, waiters.For(req.Msg.WaitMs))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.TipResponse{Tip: tip(t)}), nil
}

func (c Connect) ThumbsUp(ctx context.Context, req *connect.Request[tippingv1.ThumbsUpRequest]) (*connect.Response[tippingv1.ThumbsUpResponse], error) {
	t, err := c.App.ThumbsUp(ctx, req.Msg.RequestId, req.Msg.SongId, waiters.For(req.Msg.WaitMs))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.ThumbsUpResponse{Tip: tip(t)}), nil
}

func (c Connect) GetTip(ctx context.Context, req *connect.Request[tippingv1.GetTipRequest]) (*connect.Response[tippingv1.GetTipResponse], error) {
	t, err := c.App.GetTip(ctx, req.Msg.TipId, time.Duration(req.Msg.WaitMs)*time.Millisecond)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.GetTipResponse{Tip: tip(t)}), nil
}

func (c Connect) settings(s app.Settings) *tippingv1.TipSettings {
	r := c.App.Rules
	return &tippingv1.TipSettings{ThumbsUpAmount: domain.FormatUSD(s.ThumbsUp), AutoTip: s.AutoTip, AutoTipMonthlyBudget: domain.FormatUSD(s.Budget),
		AutoTipSpentThisMonth: domain.FormatUSD(s.Spent), AutoTipAmount: domain.FormatUSD(r.AutoTipAmount), AutoTipAfterPlays: r.AutoTipAfterPlays}
}

func (c Connect) SetThumbsUpAmount(ctx context.Context, req *connect.Request[tippingv1.SetThumbsUpAmountRequest]) (*connect.Response[tippingv1.SetThumbsUpAmountResponse], error) {
	s, err := c.App.SetThumbsUpAmount(ctx, req.Msg.Amount)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.SetThumbsUpAmountResponse{Settings: c.settings(s)}), nil
}

func (c Connect) SetAutoTip(ctx context.Context, req *connect.Request[tippingv1.SetAutoTipRequest]) (*connect.Response[tippingv1.SetAutoTipResponse], error) {
	s, err := c.App.SetAutoTip(ctx, req.Msg.MonthlyBudget)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.SetAutoTipResponse{Settings: c.settings(s)}), nil
}

func (c Connect) ClearAutoTip(ctx context.Context, _ *connect.Request[tippingv1.ClearAutoTipRequest]) (*connect.Response[tippingv1.ClearAutoTipResponse], error) {
	s, err := c.App.ClearAutoTip(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.ClearAutoTipResponse{Settings: c.settings(s)}), nil
}

func (c Connect) GetTipSettings(ctx context.Context, _ *connect.Request[tippingv1.GetTipSettingsRequest]) (*connect.Response[tippingv1.GetTipSettingsResponse], error) {
	s, err := c.App.GetTipSettings(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.GetTipSettingsResponse{Settings: c.settings(s)}), nil
}

func (c Connect) SetTrueFanAmount(ctx context.Context, req *connect.Request[tippingv1.SetTrueFanAmountRequest]) (*connect.Response[tippingv1.SetTrueFanAmountResponse], error) {
	artist, units, err := c.App.SetTrueFanAmount(ctx, req.Msg.Monthly)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.SetTrueFanAmountResponse{ArtistId: artist, Monthly: domain.FormatUSD(units)}), nil
}

func subscription(s domain.Subscription) *tippingv1.Subscription {
	out := &tippingv1.Subscription{SubscriptionId: s.ID, ArtistId: s.Artist, Monthly: domain.FormatUSD(s.Monthly), State: s.State,
		Period: s.Period, FailureReason: s.FailureReason}
	if !s.PaidUntil.IsZero() {
		out.PaidUntil = timestamppb.New(s.PaidUntil)
	}
	if !s.NextAt.IsZero() {
		out.NextChargeAt = timestamppb.New(s.NextAt)
	}
	return out
}

func (c Connect) Subscribe(ctx context.Context, req *connect.Request[tippingv1.SubscribeRequest]) (*connect.Response[tippingv1.SubscribeResponse], error) {
	s, err := c.App.Subscribe(ctx, req.Msg.RequestId, req.Msg.ArtistId, waiters.For(req.Msg.WaitMs))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.SubscribeResponse{Subscription: subscription(s)}), nil
}

func (c Connect) CancelSubscription(ctx context.Context, req *connect.Request[tippingv1.CancelSubscriptionRequest]) (*connect.Response[tippingv1.CancelSubscriptionResponse], error) {
	s, err := c.App.CancelSubscription(ctx, req.Msg.SubscriptionId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.CancelSubscriptionResponse{Subscription: subscription(s)}), nil
}

func (c Connect) GetSubscription(ctx context.Context, req *connect.Request[tippingv1.GetSubscriptionRequest]) (*connect.Response[tippingv1.GetSubscriptionResponse], error) {
	s, err := c.App.GetSubscription(ctx, req.Msg.SubscriptionId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.GetSubscriptionResponse{Subscription: subscription(s)}), nil
}

func purchase(p *domain.Purchase) *tippingv1.Purchase {
	out := &tippingv1.Purchase{PurchaseId: p.ID, SongId: p.Request.SongId, Price: domain.FormatUSD(p.Request.Price.GetUnits()),
		Status: statuses[p.Status], TransactionId: p.TxID}
	if p.Status == domain.Failed {
		out.FailureReason, out.Detail = domain.ReasonName(p.Reason), p.Detail
	}
	return out
}

func (c Connect) Purchase(ctx context.Context, req *connect.Request[tippingv1.PurchaseRequest]) (*connect.Response[tippingv1.PurchaseResponse], error) {
	m := req.Msg
	p, err := c.App.Purchase(ctx, m.RequestId, m.SongId, m.ReferralToken, m.PurchaserPublicKey, m.ExpectedPrice, waiters.For(m.WaitMs))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.PurchaseResponse{Purchase: purchase(p)}), nil
}

func (c Connect) GetPurchase(ctx context.Context, req *connect.Request[tippingv1.GetPurchaseRequest]) (*connect.Response[tippingv1.GetPurchaseResponse], error) {
	p, err := c.App.GetPurchase(ctx, req.Msg.PurchaseId, time.Duration(req.Msg.WaitMs)*time.Millisecond)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&tippingv1.GetPurchaseResponse{Purchase: purchase(p)}), nil
}
