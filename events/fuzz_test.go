package events_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/fanfare/fanfare/events"
	eventsv1 "github.com/fanfare/fanfare/proto/gen/fanfare/events/v1"
)

func FuzzDecode(f *testing.F) {
	for _, msg := range []proto.Message{
		&eventsv1.AccountOpened{AccountId: "wallet:a:USD", Kind: eventsv1.AccountKind_ACCOUNT_KIND_WALLET, Asset: "USD"},
		&eventsv1.BookBatchAppended{Asset: "FAN", Entries: []*eventsv1.BookBatchAppended_Entry{
			{Entry: &eventsv1.BookBatchAppended_Entry_Committed{Committed: &eventsv1.LedgerTransactionCommitted{
				TransactionId: "t1", Sequence: 9,
				Postings: []*eventsv1.Posting{{Debit: "mint", Credit: "wallet:a:FAN", Asset: "FAN", Amount: 100_000_000}},
			}}},
			{Entry: &eventsv1.BookBatchAppended_Entry_Rejected{Rejected: &eventsv1.LedgerTransactionRejected{
				TransactionId: "t2", Reason: eventsv1.LedgerTransactionRejected_REASON_SUPPLY_CAP,
			}}},
		}},
		&eventsv1.PlayCounted{PlayId: "p", SongPlayNumber: 10_001},
		&eventsv1.SongRegistered{Description: &eventsv1.SongDescription{SongId: "s", Fingerprint: []uint32{1, 2, 3}}},
	} {
		typeName, data, err := events.Encode(msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(typeName, data)
	}
	for _, name := range events.Types() {
		f.Add(name, []byte{})
	}
	f.Add(legacyV0, []byte("wallet:a:USD|5"))
	f.Add(legacyV1, []byte(`{"account":"a","cents":-1}`))
	f.Add(loopA, []byte{})
	f.Add(broken, []byte{})
	f.Add("fanfare.accounts.v1.Nope", []byte{0x08, 0x01})
	f.Add("fanfare.accounts.v1.AccountOpened", []byte{0x0a, 0x0a, 'x'})
	f.Add("", []byte(nil))
	// Invalid UTF-8 in a nested string; a known field with another wire type.
	f.Add("fanfare.accounts.v1.AccountOpened", []byte{0x0a, 0x01, 0xff})
	f.Add("fanfare.accounts.v1.AccountOpened", []byte{0x08, 0x01})

	f.Fuzz(func(t *testing.T, typeName string, data []byte) {
		msg, err := events.Decode(typeName, data)
		// Check decides as Decode does, without building the message.
		checkErr := events.Check(typeName, data)
		if (err == nil) != (checkErr == nil) {
			t.Fatalf("Decode says %v, Check says %v", err, checkErr)
		}
		for _, class := range []error{events.ErrUnknownType, events.ErrMalformed, events.ErrUpcast} {
			if errors.Is(err, class) != errors.Is(checkErr, class) {
				t.Fatalf("Decode says %v, Check says %v", err, checkErr)
			}
		}
		if err != nil {
			if msg != nil {
				t.Fatalf("Decode returned %v with error %v", msg, err)
			}
			if !errors.Is(err, events.ErrUnknownType) && !errors.Is(err, events.ErrMalformed) && !errors.Is(err, events.ErrUpcast) {
				t.Fatalf("Decode error %v is none of ErrUnknownType, ErrMalformed, ErrUpcast", err)
			}
			return
		}
		name, data2, err := events.Encode(msg)
		if err != nil {
			t.Fatalf("decoded %T does not encode: %v", msg, err)
		}
		again, err := events.Decode(name, data2)
		if err != nil || !proto.Equal(msg, again) {
			t.Fatalf("re-decode of %s = %v, %v; want %v", name, again, err, msg)
		}
	})
}

func FuzzEnvelope(f *testing.F) {
	f.Add([]byte(validEnvelopeJSON))
	f.Add(bytes.Replace([]byte(validEnvelopeJSON), []byte(".123456789Z"), []byte("Z"), 1))
	f.Add(bytes.Replace([]byte(validEnvelopeJSON), []byte("Z"), []byte("+02:00"), 1))
	f.Add(bytes.Replace([]byte(validEnvelopeJSON), []byte(`:3}`), []byte(`:18446744073709551615}`), 1))
	f.Add(bytes.Replace([]byte(validEnvelopeJSON), []byte("2025"), []byte("0000"), 1))
	f.Add([]byte(`{"id":"x","type":1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Add([]byte{0xff, '{'})
	withTrace := func(v string) []byte {
		return []byte(strings.TrimSuffix(validEnvelopeJSON, "}") + `,"traceparent":` + v + `}`)
	}
	f.Add(withTrace(`"` + traceparent + `"`))
	f.Add(withTrace(`"01` + traceparent[2:] + `-more"`))
	f.Add(withTrace(`"00-00000000000000000000000000000000-00f067aa0ba902b7-01"`))
	f.Add(withTrace(`7`))

	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := events.UnmarshalEnvelope(data)
		if err != nil {
			if !errors.Is(err, events.ErrInvalidEnvelope) {
				t.Fatalf("UnmarshalEnvelope error %v is not ErrInvalidEnvelope", err)
			}
			if e != (events.Envelope{}) {
				t.Fatalf("UnmarshalEnvelope returned %+v with error %v", e, err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted envelope %+v does not validate: %v", e, err)
		}
		stored, err := events.MarshalEnvelope(e)
		if err != nil {
			t.Fatalf("accepted envelope %+v does not marshal: %v", e, err)
		}
		back, err := events.UnmarshalEnvelope(stored)
		if err != nil || back != e {
			t.Fatalf("round trip of %s = %+v, %v; want %+v", stored, back, err, e)
		}
		restored, err := events.MarshalEnvelope(back)
		if err != nil || !bytes.Equal(restored, stored) {
			t.Fatalf("stored form is not stable: %s then %s (%v)", stored, restored, err)
		}
		if tp := events.TraceparentOf(stored); tp != e.Traceparent {
			t.Fatalf("TraceparentOf(%s) = %q; want %q", stored, tp, e.Traceparent)
		}
	})
}
