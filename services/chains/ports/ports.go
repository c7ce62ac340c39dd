// Package ports exposes the chains service: the Connect API and the Kafka
// handler that resolves purchases' referral tokens.
package ports

import (
	"context"

	"connectrpc.com/connect"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/fanfare/fanfare/internal/platform/kafka"
	chainsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1"
	"github.com/fanfare/fanfare/proto/gen/fanfare/chains/v1/chainsv1connect"
	"github.com/fanfare/fanfare/services/chains/app"
	"github.com/fanfare/fanfare/services/chains/domain"
)

// PurchasesGroup consumes PurchaseRequested from fanfare.tipping.v1 (a
// Kafka group id: never rename).
const PurchasesGroup = "chains.purchases"

// Groups are the service's Kafka handlers.
func Groups(a *app.App) []kafka.HandlerGroup {
	return []kafka.HandlerGroup{{Name: PurchasesGroup, Handlers: []cqrs.GroupEventHandler{kafka.Reaction(a.ResolvePurchase)}}}
}

// Connect implements ChainsService.
type Connect struct {
	App *app.App
}

var _ chainsv1connect.ChainsServiceHandler = Connect{}

func (c Connect) IssueReferral(ctx context.Context, req *connect.Request[chainsv1.IssueReferralRequest]) (*connect.Response[chainsv1.IssueReferralResponse], error) {
	id, tok, err := c.App.IssueReferral(ctx, req.Msg.RequestId, req.Msg.SongId)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&chainsv1.IssueReferralResponse{TokenId: id, Token: domain.EncodeToken(tok)}), nil
}

func (c Connect) RegisterDistributorKey(ctx context.Context, req *connect.Request[chainsv1.RegisterDistributorKeyRequest]) (*connect.Response[chainsv1.RegisterDistributorKeyResponse], error) {
	id, registered, err := c.App.RegisterDistributorKey(ctx, req.Msg.PublicKey)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&chainsv1.RegisterDistributorKeyResponse{DistributorId: id, Registered: registered}), nil
}

func (c Connect) GetServiceKeys(ctx context.Context, _ *connect.Request[chainsv1.GetServiceKeysRequest]) (*connect.Response[chainsv1.GetServiceKeysResponse], error) {
	sign, box, text := c.App.ServiceKeys()
	return connect.NewResponse(&chainsv1.GetServiceKeysResponse{SigningKey: sign, BoxKey: box, BoxKeyText: text}), nil
}
