// Package domain holds the tipping service's rules and aggregates: a fan's
// tips and auto-tip budget (stream fan-<listener>), "true fan"
// subscriptions (one stream, kept by a single writer so its clock-driven
// charges are decided on the whole state), and purchases (stream
// purchase-<id>). No I/O.
package domain

import (
	"fmt"
	"strings"
	"time"

	"github.com/fanfare/fanfare/internal/platform/money"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
)

// USD is the asset every fan payment is made in.
var USD = money.Asset{Code: "USD", Scale: 2}

// Rules are the tip and subscription numbers (DESIGN §6), in USD cents.
type Rules struct {
	MinimumTip      int64
	ThumbsUpDefault int64
	// AutoTipAfterPlays: auto-tips start after this many counted plays of
	// a song by the listener.
	AutoTipAfterPlays uint32
	AutoTipAmount     int64
	AutoTipBudget     int64
	// SubscriptionDefault is an artist's monthly amount until they set one.
	SubscriptionDefault int64
	// ChargeRetries after a failed charge, spread evenly over RetryWindow.
	ChargeRetries uint32
	RetryWindow   time.Duration
}

// DefaultRules are the design's numbers.
func DefaultRules() Rules {
	return Rules{MinimumTip: 1, ThumbsUpDefault: 50, AutoTipAfterPlays: 5, AutoTipAmount: 5, AutoTipBudget: 500,
		SubscriptionDefault: 100, ChargeRetries: 3, RetryWindow: 72 * time.Hour}
}

// Validate reports rules that cannot work.
func (r Rules) Validate() error {
	switch {
	case r.MinimumTip <= 0:
		return fmt.Errorf("tipping rules: minimum tip must be positive")
	case r.ThumbsUpDefault < r.MinimumTip || r.AutoTipAmount < r.MinimumTip:
		return fmt.Errorf("tipping rules: thumbs-up and auto-tip amounts must be at least the minimum tip")
	case r.AutoTipBudget < 0 || r.SubscriptionDefault <= 0:
		return fmt.Errorf("tipping rules: budget must be ≥ 0 and the subscription default positive")
	case r.RetryWindow < 0 || (r.ChargeRetries > 0 && r.RetryWindow == 0):
		return fmt.Errorf("tipping rules: retries need a positive retry window")
	}
	return nil
}

// ParseUSD parses a client's decimal USD amount, at least min cents.
// Errors: InvalidInput naming the field.
func ParseUSD(field, s string, min int64) (int64, error) { return money.ParseField(USD, field, s, min) }

// FormatUSD formats cents as "1.99".
func FormatUSD(units int64) string { return money.FormatUnits(units, USD.Scale) }

// USDMoney is units as an event's Money.
func USDMoney(units int64) *eventsv1.Money { return &eventsv1.Money{Asset: USD.Code, Units: units} }

// Month is the budget month of t, "2006-01" in UTC.
func Month(t time.Time) string { return t.UTC().Format("2006-01") }

// AddMonths adds n calendar months to t, keeping the day of the month
// where the target month has it and the month's last day where it does
// not (Jan 31 + 1 month = Feb 28/29), so billing periods never skip a
// month the way time.AddDate's normalisation would.
func AddMonths(t time.Time, n int) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

// ReasonName is an event's reason enum as clients see it:
// REASON_INSUFFICIENT_FUNDS → "insufficient_funds".
func ReasonName(r fmt.Stringer) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "REASON_"))
}

// SourceName is a tip's source as clients see it: SOURCE_THUMBS_UP →
// "thumbs_up".
func SourceName(s eventsv1.TipRequested_Source) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SOURCE_"))
}
