package forwarder_test

import (
	"errors"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/fanfare/fanfare/internal/platform/eventstore"
)

func (anyRev) rev() esdb.ExpectedRevision { return esdb.Any{} }

func isFenced(err error) bool { return errors.Is(err, eventstore.ErrFenced) }
