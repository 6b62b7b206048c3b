// Package nodestatus registers the agent's Node with the API server, keeps
// its status true, renews its Lease and watches the Node.
//
// # What it does
//
// Run first registers the Node: it creates it with the well-known labels
// (kubernetes.io/hostname, kubernetes.io/os, kubernetes.io/arch and their
// beta.kubernetes.io twins), the extra --node-labels, the
// controller-managed-attach-detach annotation, the registration taints, the
// provider ID and a complete status. If the Node exists already it is
// adopted: missing or different labels and the annotation are updated (never
// removed), and the next status sync overwrites the status. Registration
// retries with a backoff of 100ms doubling to 7s, as the kubelet does.
//
// Then three loops run until the context ends:
//
//   - status (sync.go, status.go): every StatusUpdateFrequency (10s), or at
//     once on Poke, the status is computed: capacity and allocatable (cpu,
//     memory, pods, ephemeral-storage of RootDir, hugepages-<size> of
//     each huge page pool the agent read at start; allocatable.go),
//     addresses, nodeInfo, the kubelet
//     endpoint port, declared features, the runtime's images (the
//     biggest nodeStatusMaxImages, 50 by default), the runtime's handlers
//     with their features (runtimeHandlers, from CRI Status; kept while
//     the runtime does not answer) and the MemoryPressure,
//     DiskPressure, PIDPressure and Ready conditions. It is posted with
//     UpdateStatus only if something other than heartbeat times changed, or
//     when StatusReportFrequency (5m) passed since the last post: with node
//     leases, the Lease is the heartbeat and the status is news. A conflict
//     refetches the Node and retries. lastTransitionTime moves only when a
//     condition's status flips.
//   - lease (lease.go): the Lease kube-node-lease/<node> is renewed every
//     LeaseDuration/4, owned by the Node (ownerReference with its UID) so
//     that it is collected with it; a failure retries after 200ms doubling
//     to 7s.
//   - watch (watch.go): an informer over the agent's own Node, selected by
//     metadata.name as the Node authorizer requires, keeps Node() current
//     and notices deletion.
//
// The lease renewals and the status posts (with the Node reads they need)
// go through Config.HeartbeatClient, the kubelet's heartbeat client: a
// client of its own with no client-side rate limit and a timeout of the
// status update frequency capped at the lease duration, so that no other
// traffic of the agent delays a heartbeat. Registration and the watch use
// the main client.
//
// Ready is True only when the runtime answers Status with RuntimeReady and
// NetworkReady true, no other component has set a reason with
// SetNotReadyReason and the node is not shutting down (ShuttingDown, the
// kubelet's message "node is shutting down"); otherwise it is False with
// reason KubeletNotReady and a message naming every problem. The runtime
// is asked on every tick and every Poke, so an unreachable runtime turns
// the node NotReady within one StatusUpdateFrequency. SyncStatus posts the
// status at once, for the last word before the agent exits.
//
// Allocatable is the capacity less what the kubelet's
// GetNodeAllocatableReservation holds back: KubeReserved and
// SystemReserved, and the memory.available and nodefs.available hard
// eviction thresholds of evictionHard (a percentage is of the capacity,
// computed with the kubelet's float32), never below zero; allocatable
// memory is also less the huge pages (Config.HugePages: the kernel counts
// them in MemTotal, no pod can use them as memory). Huge pages are read
// once, as the kubelet's cached machine info: a change of nr_hugepages
// shows after a restart (package hugepages). CheckAllocatable
// refuses a reservation above the capacity, as the kubelet refuses to
// start with one. The MemoryPressure, DiskPressure and PIDPressure
// conditions (pressure.go) are the eviction manager's
// (Config.UnderPressure, eviction.Manager.UnderPressure), as the
// kubelet's setters take them from its eviction manager: True while it
// says so, False otherwise. It reads the signals (memory.available from
// the stats summary, the nodefs and imagefs space and inodes,
// pid.available) and applies the thresholds and
// evictionPressureTransitionPeriod; this package reads none of them. The
// status loop starts before the eviction manager exists: until then, and
// when there is none, the conditions are False.
//
// The host is read through the small Host interface (/proc/meminfo,
// statfs, /proc/loadavg, /etc/machine-id, os-release, ...) so tests run
// anywhere without root.
//
// # Differences from the kubelet
//
//   - A Node deleted under a running agent is registered again (and the
//     Lease's owner follows the new UID); the kubelet waits for a restart.
//   - For the pressure conditions no NodeHasInsufficientMemory-style
//     events are recorded, and the messages say nodeagent where the
//     kubelet's say kubelet.
//   - No cloud provider, pod CIDR, volumes-in-use, extended
//     resources or random jitter on the report period.
//   - Images are listed from the runtime at every status computation, not
//     from an image cache the garbage collector refreshes every 30s.
//   - Status is written with UpdateStatus on the last seen Node rather than
//     a strategic merge patch; only the fields listed above are touched.
package nodestatus
