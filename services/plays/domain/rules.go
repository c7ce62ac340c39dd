package domain

import (
	"fmt"
	"time"

	"github.com/fanfare/fanfare/internal/platform/apperr"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
)

// Defaults of the built-in play rules.
const (
	// DefaultCountCoveragePPM counts a play at 50% coverage.
	DefaultCountCoveragePPM = 500_000
	// DefaultMinInterval refuses heartbeats closer together than 1 s.
	DefaultMinInterval = time.Second
	// DefaultSlack is added to the wall time a heartbeat may credit.
	DefaultSlack = 500 * time.Millisecond
	// DefaultMaxCredit is the most one heartbeat may credit.
	DefaultMaxCredit = 10 * time.Second
	// DefaultSessionTTL expires a session 5 minutes after its last heartbeat.
	DefaultSessionTTL = 5 * time.Minute
	// DefaultMaxOpenSessions bounds a listener's open sessions.
	DefaultMaxOpenSessions = 8
)

// Rules are the rules for counting plays from heartbeats: the Go form of
// eventsv1.PlayRules. Durations are whole milliseconds.
type Rules struct {
	// CountCoveragePPM is the coverage that counts a play, in parts per
	// million of the duration (1..1,000,000).
	CountCoveragePPM uint32
	// MinInterval: heartbeats closer than this to the previous accepted one
	// are refused (≥ 0).
	MinInterval time.Duration
	// Slack is added to the wall time since the previous heartbeat (≥ 0).
	Slack time.Duration
	// MaxCredit is the most one heartbeat may credit (> 0).
	MaxCredit time.Duration
	// SessionTTL: a session expires this long after its last accepted
	// heartbeat, or after it started (> 0).
	SessionTTL time.Duration
	// MaxOpenSessions is the most sessions one listener may have open (> 0);
	// the app layer enforces it.
	MaxOpenSessions uint32
}

// DefaultRules returns the built-in rules: count at 50% coverage, heartbeats
// at least 1 s apart, slack 500 ms, at most 10 s per heartbeat, sessions
// expire 5 minutes after their last heartbeat, at most 8 open sessions per
// listener.
func DefaultRules() Rules {
	return Rules{
		CountCoveragePPM: DefaultCountCoveragePPM,
		MinInterval:      DefaultMinInterval,
		Slack:            DefaultSlack,
		MaxCredit:        DefaultMaxCredit,
		SessionTTL:       DefaultSessionTTL,
		MaxOpenSessions:  DefaultMaxOpenSessions,
	}
}

// maxRuleDuration bounds every duration of the rules (a year), so sums of
// them and times never overflow.
const maxRuleDuration = 366 * 24 * time.Hour

// Validate returns an error wrapping [ErrInvalidRules] (kind invalid_input)
// that says which field is out of range.
func (r Rules) Validate() error {
	if r.CountCoveragePPM == 0 || r.CountCoveragePPM > 1_000_000 {
		return invalidRules("count coverage must be 1..1000000 ppm, got %d", r.CountCoveragePPM)
	}
	for _, d := range []struct {
		name     string
		v        time.Duration
		positive bool
	}{
		{"min interval", r.MinInterval, false},
		{"slack", r.Slack, false},
		{"max credit", r.MaxCredit, true},
		{"session TTL", r.SessionTTL, true},
	} {
		if d.v < 0 || d.positive && d.v == 0 || d.v > maxRuleDuration {
			return invalidRules("%s must be %s and at most %s, got %s", d.name, map[bool]string{true: "> 0", false: "≥ 0"}[d.positive], maxRuleDuration, d.v)
		}
		if d.v%time.Millisecond != 0 {
			return invalidRules("%s must be whole milliseconds, got %s", d.name, d.v)
		}
	}
	if r.MaxOpenSessions == 0 {
		return invalidRules("max open sessions must be > 0")
	}
	return nil
}

// RulesFromProto converts the policy's PlayRules; nil gives [DefaultRules].
// The result is validated.
func RulesFromProto(p *eventsv1.PlayRules) (Rules, error) {
	if p == nil {
		return DefaultRules(), nil
	}
	ms := func(name string, v uint64) (time.Duration, error) {
		if v > uint64(maxRuleDuration/time.Millisecond) {
			return 0, invalidRules("%s of %d ms is too long", name, v)
		}
		return time.Duration(v) * time.Millisecond, nil
	}
	var r Rules
	var err error
	r.CountCoveragePPM = p.CountCoveragePpm
	r.MaxOpenSessions = p.MaxOpenSessions
	if r.MinInterval, err = ms("min interval", p.HeartbeatMinIntervalMs); err != nil {
		return Rules{}, err
	}
	if r.Slack, err = ms("slack", p.HeartbeatSlackMs); err != nil {
		return Rules{}, err
	}
	if r.MaxCredit, err = ms("max credit", p.HeartbeatMaxCreditMs); err != nil {
		return Rules{}, err
	}
	if r.SessionTTL, err = ms("session TTL", p.SessionTtlMs); err != nil {
		return Rules{}, err
	}
	if err := r.Validate(); err != nil {
		return Rules{}, err
	}
	return r, nil
}

// Proto returns the rules as eventsv1.PlayRules.
func (r Rules) Proto() *eventsv1.PlayRules {
	return &eventsv1.PlayRules{
		CountCoveragePpm:       r.CountCoveragePPM,
		HeartbeatMinIntervalMs: uint64(r.MinInterval / time.Millisecond),
		HeartbeatSlackMs:       uint64(r.Slack / time.Millisecond),
		HeartbeatMaxCreditMs:   uint64(r.MaxCredit / time.Millisecond),
		SessionTtlMs:           uint64(r.SessionTTL / time.Millisecond),
		MaxOpenSessions:        r.MaxOpenSessions,
	}
}

func invalidRules(format string, args ...any) error {
	return kinded(apperr.InvalidInput, ErrInvalidRules, fmt.Sprintf(format, args...))
}
