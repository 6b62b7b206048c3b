package cni

import "errors"

// ErrNotReady is returned (wrapped, with the reason) while no usable network
// config is loaded: Status returns it and Setup refuses to run.
var ErrNotReady = errors.New("network plugin not ready")

// ErrNotSetUp is returned by Check and CachedResult when the CNI cache holds
// no attachment of the sandbox: it was never set up by this agent, or it was
// torn down already.
var ErrNotSetUp = errors.New("no cached network attachment")

// ErrUnreadableCache is returned by Check and CachedResult when the CNI
// cache holds entries of the sandbox, but none that reads: a truncated or
// half-written file, garbage. The error names the files; they are left as
// they are (the next ADD or DEL of the network rewrites or removes them).
var ErrUnreadableCache = errors.New("unreadable CNI cache entry")

// IsNotReady reports whether err says that no usable network config is loaded.
func IsNotReady(err error) bool { return errors.Is(err, ErrNotReady) }

// IsNotSetUp reports whether err says that the sandbox has no cached
// attachment.
func IsNotSetUp(err error) bool { return errors.Is(err, ErrNotSetUp) }
