package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/fanfare/fanfare/events"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
)

// The upcasters below stand for two historical schemas of a deposit:
//
//	fanfare.legacy.v0.Deposited  data "account|cents"            (text)
//	fanfare.legacy.v1.Deposited  data {"account":…,"cents":…}    (JSON)
//
// each upcast one step, ending at fanfare.accounts.v1.DepositConfirmed.
const (
	legacyV0 = "fanfare.legacy.v0.Deposited"
	legacyV1 = "fanfare.legacy.v1.Deposited"
	broken   = "fanfare.legacy.v0.Broken"
	loopA    = "fanfare.legacy.v0.LoopA"
	loopB    = "fanfare.legacy.v0.LoopB"
	inPlace  = "fanfare.legacy.v0.InPlace"
)

var errBroken = errors.New("broken on purpose")

type legacyDeposit struct {
	Account string `json:"account"`
	Cents   int64  `json:"cents"`
}

// Registered once per test binary, as production upcasters are from init.
func init() {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(events.RegisterUpcaster(legacyV0, func(_ string, data []byte) (string, []byte, error) {
		account, cents, ok := strings.Cut(string(data), "|")
		if !ok {
			return "", nil, fmt.Errorf("want account|cents, got %q", data)
		}
		n, err := strconv.ParseInt(cents, 10, 64)
		if err != nil {
			return "", nil, err
		}
		out, err := json.Marshal(legacyDeposit{Account: account, Cents: n})
		return legacyV1, out, err
	}))
	must(events.RegisterUpcaster(legacyV1, func(_ string, data []byte) (string, []byte, error) {
		var d legacyDeposit
		if err := json.Unmarshal(data, &d); err != nil {
			return "", nil, err
		}
		_, out, err := events.Encode(&eventsv1.DepositConfirmed{
			AccountId: d.Account,
			Amount:    &eventsv1.Money{Asset: "USD", Units: d.Cents},
			Rail:      "bank",
		})
		return "fanfare.accounts.v1.DepositConfirmed", out, err
	}))
	must(events.RegisterUpcaster(broken, func(string, []byte) (string, []byte, error) {
		return "", nil, errBroken
	}))
	must(events.RegisterUpcaster(loopA, func(_ string, d []byte) (string, []byte, error) { return loopB, d, nil }))
	must(events.RegisterUpcaster(loopB, func(_ string, d []byte) (string, []byte, error) { return loopA, d, nil }))
	must(events.RegisterUpcaster(inPlace, func(_ string, d []byte) (string, []byte, error) {
		return inPlace, append([]byte("upgraded:"), d...), nil
	}))
}

func TestDecodeUpcastsThroughTheChain(t *testing.T) {
	msg, err := events.Decode(legacyV0, []byte("wallet:ada:USD|1250"))
	if err != nil {
		t.Fatal(err)
	}
	want := &eventsv1.DepositConfirmed{
		AccountId: "wallet:ada:USD",
		Amount:    &eventsv1.Money{Asset: "USD", Units: 1250},
		Rail:      "bank",
	}
	if !proto.Equal(msg, want) {
		t.Fatalf("Decode(v0) = %v; want %v", msg, want)
	}
	if name, _ := events.TypeName(msg); name != "fanfare.accounts.v1.DepositConfirmed" {
		t.Fatalf("decoded type %q", name)
	}
}

func TestUpcastStartsWhereTheStoredTypeIs(t *testing.T) {
	typeName, data, err := events.Upcast(legacyV1, []byte(`{"account":"wallet:bob:USD","cents":7}`))
	if err != nil {
		t.Fatal(err)
	}
	if typeName != "fanfare.accounts.v1.DepositConfirmed" {
		t.Fatalf("Upcast type = %q", typeName)
	}
	var got eventsv1.DepositConfirmed
	if err := proto.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.GetAccountId() != "wallet:bob:USD" || got.GetAmount().GetUnits() != 7 {
		t.Fatalf("upcast data = %v", &got)
	}
}

func TestUpcastLeavesCurrentTypesAlone(t *testing.T) {
	data := []byte{0x0a, 0x01, 'x'}
	typeName, out, err := events.Upcast("fanfare.accounts.v1.AccountOpened", data)
	if err != nil || typeName != "fanfare.accounts.v1.AccountOpened" || !bytes.Equal(out, data) {
		t.Fatalf("Upcast(current) = %q, %x, %v", typeName, out, err)
	}
}

func TestUpcasterKeepingItsTypeEndsTheChain(t *testing.T) {
	typeName, out, err := events.Upcast(inPlace, []byte("x"))
	if err != nil || typeName != inPlace || string(out) != "upgraded:x" {
		t.Fatalf("Upcast(in place) = %q, %q, %v; want one rewrite", typeName, out, err)
	}
}

func TestUpcasterErrorsAreWrapped(t *testing.T) {
	_, err := events.Decode(broken, nil)
	if !errors.Is(err, events.ErrUpcast) || !errors.Is(err, errBroken) || !strings.Contains(err.Error(), broken) {
		t.Fatalf("Decode(broken) error = %v; want ErrUpcast wrapping errBroken, naming %s", err, broken)
	}
	_, err = events.Decode(legacyV0, []byte("no separator"))
	if !errors.Is(err, events.ErrUpcast) {
		t.Fatalf("Decode(bad v0 data) error = %v; want ErrUpcast", err)
	}
}

func TestUpcasterLoopIsAnError(t *testing.T) {
	_, _, err := events.Upcast(loopA, []byte("x"))
	if !errors.Is(err, events.ErrUpcast) || !strings.Contains(err.Error(), "loop") {
		t.Fatalf("Upcast(loop) error = %v; want ErrUpcast about a loop", err)
	}
}

func TestRegisterUpcasterRefusesBadRegistrations(t *testing.T) {
	ok := func(string, []byte) (string, []byte, error) { return "", nil, nil }
	cases := map[string]struct {
		oldType string
		up      events.Upcaster
	}{
		"duplicate":  {legacyV0, ok},
		"empty type": {"", ok},
		"nil":        {"fanfare.legacy.v0.Nil", nil},
	}
	for name, c := range cases {
		if err := events.RegisterUpcaster(c.oldType, c.up); err == nil {
			t.Errorf("%s: RegisterUpcaster succeeded", name)
		}
	}
	// The refused duplicate did not replace the original.
	if typeName, _, err := events.Upcast(legacyV0, []byte("a|1")); err != nil || typeName != "fanfare.accounts.v1.DepositConfirmed" {
		t.Fatalf("after refused duplicate: Upcast = %q, %v", typeName, err)
	}
	// A refused nil upcaster registered nothing.
	if typeName, _, err := events.Upcast("fanfare.legacy.v0.Nil", nil); err != nil || typeName != "fanfare.legacy.v0.Nil" {
		t.Fatalf("after refused nil: Upcast = %q, %v", typeName, err)
	}
}
