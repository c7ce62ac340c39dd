package apperr_test

import (
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"github.com/fanfare/fanfare/internal/platform/apperr"
)

func TestKindsAndCodes(t *testing.T) {
	sentinel := errors.New("taken")
	err := fmt.Errorf("register: %w", apperr.Wrap(apperr.Conflict, fmt.Errorf("%w: song 1", sentinel)))
	if !errors.Is(err, sentinel) || apperr.KindOf(err) != apperr.Conflict || apperr.Code(err) != connect.CodeAlreadyExists {
		t.Fatalf("wrapped error: is %v, kind %q, code %v", errors.Is(err, sentinel), apperr.KindOf(err), apperr.Code(err))
	}
	if apperr.KindOf(sentinel) != "" || apperr.Code(sentinel) != connect.CodeInternal {
		t.Fatalf("plain error: kind %q, code %v", apperr.KindOf(sentinel), apperr.Code(sentinel))
	}
	if c := apperr.Code(apperr.New(apperr.Exhausted, "too many")); c != connect.CodeResourceExhausted {
		t.Fatalf("exhausted: %v", c)
	}
	for _, id := range []string{"", string(make([]byte, 129))} {
		if err := apperr.CheckRequestID(id); apperr.KindOf(err) != apperr.InvalidInput {
			t.Fatalf("request id of %d bytes: %v", len(id), err)
		}
	}
	if err := apperr.CheckRequestID("r-1"); err != nil {
		t.Fatal(err)
	}
}
