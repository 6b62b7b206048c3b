//go:build tools

// Package tools pins sigs.k8s.io/metrics-server, which the harness builds
// from the Go module proxy and runs as the cluster's metrics API. It is its
// own module so that its dependencies never move the agent's or the
// control plane's.
package tools

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
