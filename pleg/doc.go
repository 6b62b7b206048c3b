// Package pleg turns runtime changes into pod worker wake-ups (the
// kubelet's pod lifecycle event generator).
//
// Runtime events come from CRI GetContainerEvents: a container created,
// started, stopped or deleted wakes the worker of its pod at once. A
// relist compares each pod's containers and sandboxes (IDs and states)
// with the previous relist and wakes the pods that changed: it is the
// safety net for missed events and the only source with a runtime that
// does not implement events (containerd 1.6), where it runs every second
// as the kubelet's generic PLEG does.
package pleg
