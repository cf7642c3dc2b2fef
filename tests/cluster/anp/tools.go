//go:build tools

// Package anp pins the AdminNetworkPolicy / ClusterNetworkPolicy
// conformance suite of sigs.k8s.io/network-policy-api (its go.mod and
// go.sum here); anp.sh builds its tests with `go test -c` from the module,
// unmodified. Nothing of theirs is kept in this folder.
package anp

import (
	_ "sigs.k8s.io/network-policy-api/conformance"
	_ "sigs.k8s.io/network-policy-api/conformance/tests"
	_ "sigs.k8s.io/network-policy-api/conformance/utils/suite"
)
