package main

import (
	"maps"
	"slices"
	"testing"

	"github.com/fanfare/fanfare/internal/cluster"
)

// The parts are named in three places that cannot share one list (package
// main cannot be imported): what `serve` and `dev` build (partSpecs), what
// the gateway routes by short name, and what the cluster harness starts.
// A part added to one and not the others fails here, not in a cluster run.
func TestPartListsAgree(t *testing.T) {
	var built []string
	for _, s := range partSpecs {
		built = append(built, s.name)
	}
	slices.Sort(built)
	harness := slices.Sorted(slices.Values(slices.Concat(cluster.Services, cluster.Sagas)))
	if !slices.Equal(built, harness) {
		t.Errorf("serve builds %v, the cluster harness starts %v", built, harness)
	}
	routed := slices.Sorted(maps.Keys(routeNames))
	services := slices.Sorted(slices.Values(cluster.Services))
	if !slices.Equal(routed, services) {
		t.Errorf("the gateway routes %v, the cluster harness has the services %v", routed, services)
	}
}
