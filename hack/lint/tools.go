//go:build tools

// Package tools pins golangci-lint, which make lint builds into the cache
// (hack/lint.sh). It is its own module so that the linter's dependencies
// never enter nodeagent's go.mod.
package tools

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
)
