package events_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fanfare/fanfare/events"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
)

func TestTypeNameNamesEventsAfterTheirFile(t *testing.T) {
	cases := []struct {
		msg  proto.Message
		want string
	}{
		{&eventsv1.AccountOpened{}, "fanfare.accounts.v1.AccountOpened"},
		{&eventsv1.PolicyVersioned{}, "fanfare.accounts.v1.PolicyVersioned"},
		{&eventsv1.DepositRequested{}, "fanfare.accounts.v1.DepositRequested"},
		{&eventsv1.DepositConfirmed{}, "fanfare.accounts.v1.DepositConfirmed"},
		{&eventsv1.WithdrawalRequested{}, "fanfare.accounts.v1.WithdrawalRequested"},
		{&eventsv1.WithdrawalSettled{}, "fanfare.accounts.v1.WithdrawalSettled"},
		{&eventsv1.WithdrawalRejected{}, "fanfare.accounts.v1.WithdrawalRejected"},
		{&eventsv1.LedgerTransactionRequested{}, "fanfare.accounts.v1.LedgerTransactionRequested"},
		{&eventsv1.LedgerTransactionCommitted{}, "fanfare.accounts.v1.LedgerTransactionCommitted"},
		{&eventsv1.LedgerTransactionRejected{}, "fanfare.accounts.v1.LedgerTransactionRejected"},
		{&eventsv1.HoldPlaced{}, "fanfare.accounts.v1.HoldPlaced"},
		{&eventsv1.HoldCaptured{}, "fanfare.accounts.v1.HoldCaptured"},
		{&eventsv1.HoldVoided{}, "fanfare.accounts.v1.HoldVoided"},
		{&eventsv1.BookBatchAppended{}, "fanfare.accounts.v1.BookBatchAppended"},
		{&eventsv1.SongRegistered{}, "fanfare.songs.v1.SongRegistered"},
		{&eventsv1.SongUpdated{}, "fanfare.songs.v1.SongUpdated"},
		{&eventsv1.SongDisputed{}, "fanfare.songs.v1.SongDisputed"},
		{&eventsv1.DisputeResolved{}, "fanfare.songs.v1.DisputeResolved"},
		{&eventsv1.LocationRevealed{}, "fanfare.songs.v1.LocationRevealed"},
		{&eventsv1.RootTokenIssued{}, "fanfare.chains.v1.RootTokenIssued"},
		{&eventsv1.DistributorChainResolved{}, "fanfare.chains.v1.DistributorChainResolved"},
		{&eventsv1.SessionStarted{}, "fanfare.plays.v1.SessionStarted"},
		{&eventsv1.PlayCounted{}, "fanfare.plays.v1.PlayCounted"},
		{&eventsv1.RewardRefused{}, "fanfare.royalty.v1.RewardRefused"},
		{&eventsv1.TipRequested{}, "fanfare.tipping.v1.TipRequested"},
		{&eventsv1.PurchaseRequested{}, "fanfare.tipping.v1.PurchaseRequested"},
		{&eventsv1.PurchaseCompleted{}, "fanfare.tipping.v1.PurchaseCompleted"},
		{&eventsv1.PurchaseFailed{}, "fanfare.tipping.v1.PurchaseFailed"},
		{&eventsv1.ReferralPayoutPlanned{}, "fanfare.referral.v1.ReferralPayoutPlanned"},
		{&eventsv1.CampaignOpened{}, "fanfare.escrow.v1.CampaignOpened"},
		{&eventsv1.PledgePlaced{}, "fanfare.escrow.v1.PledgePlaced"},
		{&eventsv1.CampaignSucceeded{}, "fanfare.escrow.v1.CampaignSucceeded"},
		{&eventsv1.CampaignFailed{}, "fanfare.escrow.v1.CampaignFailed"},
		{&eventsv1.CampaignSettlementStarted{}, "fanfare.crowdfund.v1.CampaignSettlementStarted"},
		{(*eventsv1.PlayCounted)(nil), "fanfare.plays.v1.PlayCounted"},
	}
	for _, c := range cases {
		got, err := events.TypeName(c.msg)
		if err != nil || got != c.want {
			t.Errorf("TypeName(%T) = %q, %v; want %q", c.msg, got, err, c.want)
		}
	}
}

func TestEveryTypeResolvesBothWays(t *testing.T) {
	services := map[string]bool{
		"accounts": true, "songs": true, "chains": true, "plays": true, "tipping": true,
		"escrow": true, "royalty": true, "referral": true, "crowdfund": true,
	}
	seen := map[string]int{}
	types := events.Types()
	if len(types) < 40 {
		t.Fatalf("Types() has %d names, want every event of every file (≥ 40)", len(types))
	}
	for _, name := range types {
		service, err := events.Service(name)
		if err != nil {
			t.Fatalf("Service(%q): %v", name, err)
		}
		if !services[service] {
			t.Errorf("Service(%q) = %q, not a Fanfare service", name, service)
		}
		seen[service]++
		topic, err := events.Topic(name)
		if want := "fanfare." + service + ".v1"; err != nil || topic != want {
			t.Errorf("Topic(%q) = %q, %v; want %q", name, topic, err, want)
		}
		if !strings.HasPrefix(name, "fanfare."+service+".v1.") {
			t.Errorf("type %q does not start with its service's topic", name)
		}
		msg, err := events.New(name)
		if err != nil {
			t.Fatalf("New(%q): %v", name, err)
		}
		back, err := events.TypeName(msg)
		if err != nil || back != name {
			t.Errorf("TypeName(New(%q)) = %q, %v", name, back, err)
		}
	}
	for service := range services {
		if seen[service] == 0 {
			t.Errorf("service %s has no events", service)
		}
	}
}

func TestTypesIsSortedAndACopy(t *testing.T) {
	a := events.Types()
	for i := 1; i < len(a); i++ {
		if a[i-1] >= a[i] {
			t.Fatalf("Types() not strictly sorted at %d: %q, %q", i, a[i-1], a[i])
		}
	}
	a[0] = "mutated"
	if events.Types()[0] == "mutated" {
		t.Fatal("Types() returned the registry's own slice")
	}
}

func TestValueTypesAreNotEvents(t *testing.T) {
	for _, msg := range []proto.Message{
		&eventsv1.Money{},
		&eventsv1.Posting{},
		&eventsv1.Policy{},
		&eventsv1.SongDescription{},
		&eventsv1.BookBatchAppended_Entry{},
		&eventsv1.HeartbeatsCredited_Range{},
		&timestamppb.Timestamp{},
		nil,
	} {
		name, err := events.TypeName(msg)
		if !errors.Is(err, events.ErrUnknownType) {
			t.Errorf("TypeName(%T) = %q, %v; want ErrUnknownType", msg, name, err)
		}
	}
}

func TestUnknownTypeNamesAreErrorsNamingTheType(t *testing.T) {
	for _, name := range []string{
		"fanfare.accounts.v1.Nope",
		"fanfare.accounts.v2.DepositConfirmed",
		"fanfare.songs.v1.DepositConfirmed",  // right message, wrong service
		"fanfare.events.v1.DepositConfirmed", // the proto full name is not a type name
		"fanfare.common.v1.Money",
		"fanfare.events.v1.Money",
		"",
	} {
		checks := map[string]func() error{
			"New":     func() error { _, err := events.New(name); return err },
			"Service": func() error { _, err := events.Service(name); return err },
			"Topic":   func() error { _, err := events.Topic(name); return err },
			"Decode":  func() error { _, err := events.Decode(name, nil); return err },
		}
		for fn, check := range checks {
			err := check()
			if !errors.Is(err, events.ErrUnknownType) {
				t.Errorf("%s(%q) error = %v; want ErrUnknownType", fn, name, err)
				continue
			}
			if !strings.Contains(err.Error(), `"`+name+`"`) {
				t.Errorf("%s(%q) error %q does not name the type", fn, name, err)
			}
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := &eventsv1.LedgerTransactionRequested{
		TransactionId: "play-42",
		Postings: []*eventsv1.Posting{
			{Debit: "mint", Credit: "wallet:listener:FAN", Asset: "FAN", Amount: 100_000_000, Kind: eventsv1.PostingKind_POSTING_KIND_ROYALTY},
			{Debit: "wallet:listener:FAN", Credit: "burn", Asset: "FAN", Amount: 12_500_000_000, Kind: eventsv1.PostingKind_POSTING_KIND_BURN},
		},
		RequestedBy: "royalty",
	}
	typeName, data, err := events.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if typeName != "fanfare.accounts.v1.LedgerTransactionRequested" {
		t.Fatalf("Encode type = %q", typeName)
	}
	out, err := events.Decode(typeName, data)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("Decode(Encode(x)) = %v; want %v", out, in)
	}
	got := out.(*eventsv1.LedgerTransactionRequested)
	if got.GetPostings()[1].GetAmount() != 12_500_000_000 {
		t.Fatalf("burn amount = %d", got.GetPostings()[1].GetAmount())
	}
}

func TestEncodeRejectsNonEvents(t *testing.T) {
	_, _, err := events.Encode(&eventsv1.Money{Asset: "USD", Units: 1})
	if !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("Encode(Money) error = %v; want ErrUnknownType", err)
	}
}

func TestDecodeMalformedData(t *testing.T) {
	const typeName = "fanfare.accounts.v1.AccountOpened"
	truncated := protowire.AppendTag(nil, 1, protowire.BytesType)
	truncated = protowire.AppendVarint(truncated, 10) // says 10 bytes follow
	truncated = append(truncated, "abc"...)           // only 3 do
	badUTF8 := protowire.AppendTag(nil, 1, protowire.BytesType)
	badUTF8 = protowire.AppendBytes(badUTF8, []byte{0xff, 0xfe})
	for name, data := range map[string][]byte{"truncated": truncated, "invalid UTF-8": badUTF8} {
		msg, err := events.Decode(typeName, data)
		if !errors.Is(err, events.ErrMalformed) || msg != nil {
			t.Errorf("%s: Decode = %v, %v; want nil, ErrMalformed", name, msg, err)
		}
	}
}

func TestDecodeKeepsKnownFieldsOfNewerWriters(t *testing.T) {
	_, data, err := events.Encode(&eventsv1.AccountOpened{AccountId: "wallet:a:USD", Asset: "USD", Kind: eventsv1.AccountKind_ACCOUNT_KIND_WALLET})
	if err != nil {
		t.Fatal(err)
	}
	// A newer schema added field 99.
	data = protowire.AppendTag(data, 99, protowire.VarintType)
	data = protowire.AppendVarint(data, 7)
	msg, err := events.Decode("fanfare.accounts.v1.AccountOpened", data)
	if err != nil {
		t.Fatal(err)
	}
	got := msg.(*eventsv1.AccountOpened)
	if got.GetAccountId() != "wallet:a:USD" || got.GetAsset() != "USD" || got.GetKind() != eventsv1.AccountKind_ACCOUNT_KIND_WALLET {
		t.Fatalf("decoded %v", got)
	}
}
