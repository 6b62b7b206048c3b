//go:build tools

// Package tools pins containerd v2, which the harness builds because
// Debian's containerd 1.6 has no CRI container events.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
