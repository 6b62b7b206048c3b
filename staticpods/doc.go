// Package staticpods reads static pod manifests from the staticPodPath
// directory and keeps their mirror pods in the apiserver, as the kubelet
// does.
//
// A static pod is defined by a file on the node, not by the apiserver. The
// agent runs it under a UID derived from the manifest and the node name
// (so a restarted agent finds its containers again), with the name
// "<name>-<node>" and the annotations kubernetes.io/config.source=file and
// kubernetes.io/config.hash=<uid>. So that users can see it, the agent
// creates a mirror pod: a copy in the apiserver annotated
// kubernetes.io/config.mirror=<hash> and owned by the Node (NodeRestriction
// requires both). The mirror pod carries the static pod's status; deleting
// it only makes the agent create it again, and removing the manifest stops
// the pod and deletes the mirror.
//
// The kubelet API (package server) answers for the static pod when a
// request names its mirror (kubectl logs, exec, attach, port-forward), as
// the kubelet's pod manager resolves a name to the pod it runs: the agent
// matches the mirror to the static pod it runs by namespace and name, and
// reads the static pod's logs by its own status of it, kept under the
// static pod's UID. The mirror's annotation is never taken as a UID to
// look containers up by: it only tells a mirror from another pod.
//
// The directory is read at start and every fileCheckFrequency; a change of
// any manifest replaces the pod (a new UID), as with the kubelet. Only
// regular files (links to them included) are read: a FIFO or a device is
// named in a warning and skipped. A file that does not hold a valid pod is
// named in a warning and skipped; unlike the kubelet, one that held a pod
// keeps it while it does not parse (a manifest caught half-written), and a
// directory that cannot be read keeps all of them. Two manifests of the
// same namespace and name: the first by file name runs, the other is named
// in a warning and ignored, as the kubelet's filterInvalidPods.
package staticpods
