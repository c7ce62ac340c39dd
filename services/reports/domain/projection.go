// Package domain is the reports service's projection (DESIGN §8): what the
// artist dashboard, payee activity and pending deposits and withdrawals
// are read from, built from the services' events. It applies each source
// stream's events once, in order per topic, and remembers how far it got in
// each, so a restart from a saved projection, reading the topics again from
// their start, counts nothing twice.
package domain

import (
	"slices"
	"strings"
	"time"

	"github.com/fanfare/fanfare/events"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
	accounts "github.com/fanfare/fanfare/services/accounts/domain"
	"github.com/fanfare/fanfare/services/accounts/ledgerview"
	"google.golang.org/protobuf/proto"
)

// fan is the token's asset code.
const fan = "FAN"

// Source is where an event was stored and when it happened.
type Source struct {
	Stream   string
	Revision uint64
	At       time.Time
}

// Projection is the whole read model. Its fields are exported so it can be
// saved and restored as JSON.
type Projection struct {
	// Version counts the events applied.
	Version uint64
	// Marks: per [MarkKey] (a source stream within a topic), its last
	// applied revision + 1.
	Marks     map[string]uint64
	Songs     map[string]*Song
	People    map[string]*Person
	Accounts  map[string]*Account
	Campaigns map[string]*Campaign
	// Transfers: deposits and withdrawals requested and not yet closed,
	// by id.
	Transfers map[string]*Transfer
}

// Song is a song's artist and rewarded plays.
type Song struct {
	Artist    string
	Title     string
	Discovery uint64
	Standard  uint64
}

// Person is what an identity's wallets were credited, by purpose.
type Person struct {
	// Minor units: FAN rewards; USD tips, purchases, subscriptions.
	FanEarned, Tips, Purchases, Subscriptions int64
	// Earnings per "YYYY-MM-DD ASSET": every credit to the person's wallets.
	Earnings map[string]int64
}

// Account is one account's balance and its activity per "YYYY-MM-DD kind"
// as [credits, debits].
type Account struct {
	Asset   string
	Balance int64
	Days    map[string]*[2]int64
}

// Campaign is a crowdfund's progress.
type Campaign struct {
	Artist  string
	Goal    int64
	Asset   string
	Status  string // open, succeeded, failed
	Pledges map[string]int64
}

// New is an empty projection.
func New() *Projection {
	return &Projection{Marks: map[string]uint64{}, Songs: map[string]*Song{}, People: map[string]*Person{},
		Accounts: map[string]*Account{}, Campaigns: map[string]*Campaign{}, Transfers: map[string]*Transfer{}}
}

// MarkKey is the key in Marks of stream's events of msg's type: the stream
// within the topic those events travel in. Per topic, because one stream's
// events can travel in several (a saga's stream holds its own events and
// its ledger requests, which the accounts topic carries) and Kafka keeps a
// stream's order only within a topic: with one mark per stream, the saga's
// ledger request could arrive first and hide its RewardRequested.
func MarkKey(stream string, msg proto.Message) string {
	// A message that is no event (none comes from the topics) has no topic.
	name, _ := events.TypeName(msg)
	topic, _ := events.Topic(name)
	return topic + " " + stream
}

// Seen reports whether the event msg at src was applied already.
func (p *Projection) Seen(src Source, msg proto.Message) bool {
	_, seen := p.mark(src, msg)
	return seen
}

// mark is msg's key in Marks and whether the event at src was applied.
func (p *Projection) mark(src Source, msg proto.Message) (key string, seen bool) {
	key = MarkKey(src.Stream, msg)
	return key, src.Revision < p.Marks[key]
}

// Apply takes one event. It returns the identities whose dashboards it
// changed, and false when the event was applied before (or is not one the
// projection reads).
func (p *Projection) Apply(src Source, msg proto.Message) (touched []string, applied bool) {
	key, seen := p.mark(src, msg)
	if seen {
		return nil, false
	}
	p.Marks[key] = src.Revision + 1
	switch e := msg.(type) {
	case *eventsv1.SongRegistered:
		touched = p.song(e.GetDescription())
	case *eventsv1.SongUpdated:
		touched = p.song(e.GetDescription())
	case *eventsv1.RewardRequested:
		s := p.Songs[e.SongId]
		if s == nil {
			s = &Song{}
			p.Songs[e.SongId] = s
		}
		if e.Tier == "discovery" {
			s.Discovery++
		} else {
			s.Standard++
		}
		touched = []string{s.Artist}
	case *eventsv1.BookBatchAppended:
		touched = p.batch(src.At, e)
	case *eventsv1.CampaignOpened:
		p.Campaigns[e.CampaignId] = &Campaign{Artist: e.ArtistId, Goal: e.GetGoal().GetUnits(), Asset: e.GetGoal().GetAsset(), Status: "open", Pledges: map[string]int64{}}
		touched = []string{e.ArtistId}
	case *eventsv1.PledgePlaced:
		if c := p.Campaigns[e.CampaignId]; c != nil {
			c.Pledges[e.PledgeId] = e.GetAmount().GetUnits()
			touched = []string{c.Artist}
		}
	case *eventsv1.PledgeCancelled:
		if c := p.Campaigns[e.CampaignId]; c != nil {
			delete(c.Pledges, e.PledgeId)
			touched = []string{c.Artist}
		}
	case *eventsv1.CampaignSucceeded:
		touched = p.settle(e.CampaignId, "succeeded")
	case *eventsv1.CampaignFailed:
		touched = p.settle(e.CampaignId, "failed")
	case *eventsv1.DepositRequested, *eventsv1.DepositConfirmed, *eventsv1.DepositRejected,
		*eventsv1.WithdrawalRequested, *eventsv1.WithdrawalSettled, *eventsv1.WithdrawalRejected:
		p.transfer(src.At, e)
	default:
		p.Version++
		return nil, false
	}
	p.Version++
	return touched, true
}

func (p *Projection) song(d *eventsv1.SongDescription) []string {
	if d.GetSongId() == "" {
		return nil
	}
	s := p.Songs[d.SongId]
	if s == nil {
		s = &Song{}
		p.Songs[d.SongId] = s
	}
	old := s.Artist
	s.Artist, s.Title = d.ArtistId, d.Title
	if old != "" && old != s.Artist {
		return []string{old, s.Artist}
	}
	return []string{s.Artist}
}

func (p *Projection) settle(id, status string) []string {
	c := p.Campaigns[id]
	if c == nil {
		return nil
	}
	c.Status = status
	return []string{c.Artist}
}

// batch applies a ledger batch's committed postings (hold captures
// included) to the accounts and their owners.
func (p *Projection) batch(at time.Time, b *eventsv1.BookBatchAppended) []string {
	day := at.UTC().Format(time.DateOnly)
	var touched []string
	ledgerview.Moved(b, func(post *eventsv1.Posting, k eventsv1.PostingKind, _ *eventsv1.LedgerTransactionCommitted) {
		kind := KindName(k)
		p.account(post.Debit, b.Asset, day, kind, 1, post.Amount)
		p.account(post.Credit, b.Asset, day, kind, 0, post.Amount)
		if owner, ok := p.credit(post.Credit, b.Asset, day, k, post.Amount); ok {
			touched = append(touched, owner)
		}
		if id, err := accounts.ParseAccountID(post.Debit); err == nil && id.Kind == accounts.AccountEscrow {
			touched = append(touched, id.Owner) // escrow released or forfeited
		}
	})
	slices.Sort(touched)
	return slices.Compact(touched)
}

// account books amount as credits (side 0) or debits (side 1) of account.
func (p *Projection) account(id, asset, day, kind string, side int, amount int64) {
	a := p.Accounts[id]
	if a == nil {
		a = &Account{Asset: asset, Days: map[string]*[2]int64{}}
		p.Accounts[id] = a
	}
	if side == 0 {
		a.Balance += amount
	} else {
		a.Balance -= amount
	}
	key := day + " " + kind
	v := a.Days[key]
	if v == nil {
		v = &[2]int64{}
		a.Days[key] = v
	}
	v[side] += amount
}

// credit counts a credit to a wallet or escrow for its owner's dashboard.
func (p *Projection) credit(account, asset, day string, k eventsv1.PostingKind, amount int64) (string, bool) {
	id, err := accounts.ParseAccountID(account)
	if err != nil || !id.User() {
		return "", false
	}
	if id.Kind == accounts.AccountEscrow {
		return id.Owner, true
	}
	who := p.People[id.Owner]
	if who == nil {
		who = &Person{Earnings: map[string]int64{}}
		p.People[id.Owner] = who
	}
	switch {
	case k == eventsv1.PostingKind_POSTING_KIND_ROYALTY && asset == fan:
		who.FanEarned += amount
	case k == eventsv1.PostingKind_POSTING_KIND_TIP:
		who.Tips += amount
	case k == eventsv1.PostingKind_POSTING_KIND_PURCHASE:
		who.Purchases += amount
	case k == eventsv1.PostingKind_POSTING_KIND_SUBSCRIPTION:
		who.Subscriptions += amount
	}
	who.Earnings[day+" "+asset] += amount
	return id.Owner, true
}

// KindName is a posting kind's report name: "royalty", "referral_fee".
func KindName(k eventsv1.PostingKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "POSTING_KIND_"))
}

// Dashboard is an artist's dashboard. Amounts are minor units.
type Dashboard struct {
	ArtistID                       string
	Songs                          []SongView
	FanEarned, FanEscrowed         int64
	Tips, Purchases, Subscriptions int64
	Earnings                       []DayAmount
	Campaigns                      []CampaignView
	Version                        uint64
}

// SongView is one song on a dashboard.
type SongView struct {
	ID string
	Song
}

// DayAmount is one day's earnings in one asset.
type DayAmount struct {
	Day, Asset string
	Amount     int64
}

// CampaignView is one campaign on a dashboard.
type CampaignView struct {
	ID            string
	Goal, Pledged int64
	Asset, Status string
}

// Dashboard reads an artist's dashboard.
func (p *Projection) Dashboard(artist string) Dashboard {
	d := Dashboard{ArtistID: artist, Version: p.Version}
	for id, s := range p.Songs {
		if s.Artist == artist {
			d.Songs = append(d.Songs, SongView{ID: id, Song: *s})
		}
	}
	slices.SortFunc(d.Songs, func(a, b SongView) int { return strings.Compare(a.ID, b.ID) })
	if who := p.People[artist]; who != nil {
		d.FanEarned, d.Tips, d.Purchases, d.Subscriptions = who.FanEarned, who.Tips, who.Purchases, who.Subscriptions
		for key, v := range who.Earnings {
			day, asset, _ := strings.Cut(key, " ")
			d.Earnings = append(d.Earnings, DayAmount{Day: day, Asset: asset, Amount: v})
		}
		slices.SortFunc(d.Earnings, func(a, b DayAmount) int {
			if c := strings.Compare(a.Day, b.Day); c != 0 {
				return c
			}
			return strings.Compare(a.Asset, b.Asset)
		})
	}
	if esc := p.Accounts[accounts.EscrowID("discovery", artist, fan)]; esc != nil {
		d.FanEscrowed = esc.Balance
	}
	for id, c := range p.Campaigns {
		if c.Artist == artist {
			var pledged int64
			for _, v := range c.Pledges {
				pledged += v
			}
			d.Campaigns = append(d.Campaigns, CampaignView{ID: id, Goal: c.Goal, Pledged: pledged, Asset: c.Asset, Status: c.Status})
		}
	}
	slices.SortFunc(d.Campaigns, func(a, b CampaignView) int { return strings.Compare(a.ID, b.ID) })
	return d
}

// Activity is one day's credits and debits of one kind.
type Activity struct {
	Day, Kind       string
	Credits, Debits int64
}

// Activity lists an account's activity by day and kind, oldest first; its
// asset is empty for an account the projection never saw.
func (p *Projection) Activity(account string) (asset string, out []Activity) {
	a := p.Accounts[account]
	if a == nil {
		return "", nil
	}
	for key, v := range a.Days {
		day, kind, _ := strings.Cut(key, " ")
		out = append(out, Activity{Day: day, Kind: kind, Credits: v[0], Debits: v[1]})
	}
	slices.SortFunc(out, func(x, y Activity) int {
		if c := strings.Compare(x.Day, y.Day); c != 0 {
			return c
		}
		return strings.Compare(x.Kind, y.Kind)
	})
	return a.Asset, out
}
