// Package podstatus writes pod statuses to the apiserver and deletes pod
// objects once the agent has stopped everything of them.
//
// Writes are synchronous, from the pod's own worker, so a status reaches
// the apiserver the moment it is known (no batching interval on the path
// from a started container to the watch event that shows it). A write is
// a strategic merge patch of pods/status computed against the last status
// the agent wrote or saw, with the pod's UID as precondition; a status that
// did not change sends nothing.
package podstatus
