// Package agent assembles nodeagent from its parts and runs it: the
// apiserver client, the runtime connection, node registration and status
// (nodestatus), the pod informer feeding the pod workers (podworkers), the
// pod syncer (podsync) with its volumes (volumes) and environment
// (podenv), runtime events (pleg), garbage collection of pods and
// containers and of images (imagegc), local storage eviction (eviction)
// and the local healthz endpoint.
//
// It owns no logic of its own beyond the wiring and the informer handlers,
// so that every piece stays testable alone.
package agent
