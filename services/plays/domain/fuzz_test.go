package domain_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/fanfare/fanfare/services/plays/domain"
)

// FuzzCoverage checks Coverage against the per-millisecond bitmap model for
// arbitrary range sequences: the first two bytes give the duration (< 4096
// ms), then each four bytes one range (from, to: two bytes each, up to 8 ms
// past the end).
func FuzzCoverage(f *testing.F) {
	f.Add([]byte{0x10, 0x00, 0, 0, 0x10, 0x00})
	f.Add([]byte{0x00, 0x01, 0, 10, 0, 20, 0, 20, 0, 30, 0, 5, 0, 25})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		dur := uint64(binary.BigEndian.Uint16(data) % 4096)
		data = data[2:]
		c, b := domain.NewCoverage(dur), make(bitmap, dur)
		for ; len(data) >= 4; data = data[4:] {
			from := uint64(binary.BigEndian.Uint16(data)) % (dur + 8)
			to := uint64(binary.BigEndian.Uint16(data[2:])) % (dur + 8)
			checkCoverage(t, c, b, from, to)
		}
	})
}

// FuzzHeartbeats drives a session with arbitrary heartbeats at arbitrary
// wall-clock steps and checks the invariants of every result and that a
// replay of the recorded events rebuilds the same session.
func FuzzHeartbeats(f *testing.F) {
	f.Add(uint32(60_000), []byte{10, 1, 0, 0, 0, 100, 10, 2, 0, 100, 0, 200})
	f.Add(uint32(1), []byte{0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, dur uint32, data []byte) {
		if dur == 0 {
			return
		}
		rules := domain.DefaultRules()
		checkHeartbeatRun(t, uint64(dur), rules, data)
	})
}

// checkHeartbeatRun decodes data as heartbeats of six bytes (wall step in
// 100 ms units, seq delta, from and to in units of 100 ms … 25.5 s: two
// bytes each) and checks them (see FuzzHeartbeats).
func checkHeartbeatRun(t *testing.T, dur uint64, rules domain.Rules, data []byte) {
	t.Helper()
	now := t0
	s := started(t, dur, rules)
	var seq uint64
	var prev time.Time // last accepted, zero before any
	var news uint64
	for ; len(data) >= 6; data = data[6:] {
		now = now.Add(time.Duration(data[0]) * 100 * time.Millisecond)
		seq += uint64(data[1]) % 3 // sometimes repeats
		from := uint64(binary.BigEndian.Uint16(data[2:])) * 10
		to := uint64(binary.BigEndian.Uint16(data[4:])) * 10
		res, err := s.Heartbeats([]domain.Heartbeat{{Seq: seq, FromMs: from, ToMs: to}}, now, rules)
		if err != nil {
			t.Fatal(err)
		}
		r := res[0]
		if r.Status != domain.Accepted {
			continue
		}
		wall := now.Sub(t0)
		if !prev.IsZero() {
			wall = now.Sub(prev)
			if wall < rules.MinInterval {
				t.Fatalf("accepted a heartbeat %s after the previous one", wall)
			}
		}
		limit := uint64(min(wall+rules.Slack, rules.MaxCredit) / time.Millisecond)
		if r.CreditedMs > limit || r.CreditedMs > to-from || r.NewMs > r.CreditedMs {
			t.Fatalf("heartbeat [%d, %d) after %s credited %d (new %d), limit %d", from, to, wall, r.CreditedMs, r.NewMs, limit)
		}
		prev = now
		news += r.NewMs
	}
	if s.CoverageMs() != news || s.CoverageMs() > dur {
		t.Fatalf("coverage %d, sum of new ms %d, duration %d", s.CoverageMs(), news, dur)
	}
	assertReplayEqual(t, s, rules)
}
