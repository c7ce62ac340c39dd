package events

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrUpcast is returned when an upcaster fails or the upcasters loop.
var ErrUpcast = errors.New("upcast failed")

// An Upcaster rewrites a stored event of an old type into a newer type and
// encoding. It is registered under the old type name and receives that name
// with the stored data. Returning the same type name rewrites the data in
// place and ends the chain.
type Upcaster func(typeName string, data []byte) (newType string, newData []byte, err error)

var upcasters = struct {
	sync.RWMutex
	byType map[string]Upcaster
}{byType: map[string]Upcaster{}}

// RegisterUpcaster registers up for events stored as oldType. Call it from an
// init function next to the schema change that needs it.
//
// Errors: an empty oldType, a nil upcaster, or a second upcaster for oldType.
func RegisterUpcaster(oldType string, up Upcaster) error {
	if oldType == "" {
		return errors.New("events: register upcaster: empty type name")
	}
	if up == nil {
		return fmt.Errorf("events: register upcaster for %q: nil upcaster", oldType)
	}
	upcasters.Lock()
	defer upcasters.Unlock()
	if _, dup := upcasters.byType[oldType]; dup {
		return fmt.Errorf("events: register upcaster for %q: already registered", oldType)
	}
	upcasters.byType[oldType] = up
	return nil
}

// Upcast applies the registered upcasters to a stored event, following the
// chain until a type has no upcaster (or an upcaster keeps its type). An event
// of a current type without an upcaster comes back unchanged. Upcast does not
// check that the resulting type is registered; Decode does.
//
// Errors: ErrUpcast, wrapping the failing upcaster's error, or when the chain
// returns to a type it has already left.
func Upcast(typeName string, data []byte) (string, []byte, error) {
	var visited []string
	for {
		upcasters.RLock()
		up := upcasters.byType[typeName]
		upcasters.RUnlock()
		if up == nil {
			return typeName, data, nil
		}
		if slices.Contains(visited, typeName) {
			return "", nil, fmt.Errorf("%w: upcasters loop: %v → %s", ErrUpcast, visited, typeName)
		}
		visited = append(visited, typeName)
		newType, newData, err := up(typeName, data)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %s: %w", ErrUpcast, typeName, err)
		}
		if newType == "" {
			return "", nil, fmt.Errorf("%w: %s: upcaster returned an empty type name", ErrUpcast, typeName)
		}
		if newType == typeName {
			return newType, newData, nil
		}
		typeName, data = newType, newData
	}
}
