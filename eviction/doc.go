// Package eviction enforces the local storage limits of pods and the
// eviction thresholds, and keeps the node's pressure conditions, as the
// kubelet's eviction manager does. On a node with
// localStorageCapacityIsolation (its default): every evictionMonitoringPeriod
// (the kubelet's 10 s) it reads the pods' storage usage and evicts a pod
//
//   - when an emptyDir volume with a sizeLimit uses more than that limit
//     ("Usage of EmptyDir volume "x" exceeds the limit "10Mi". "),
//   - else when the pod uses more local ephemeral storage (its containers'
//     writable layers and logs and its local ephemeral volumes) than the
//     sum of its containers' ephemeral-storage limits (the apiserver takes
//     no pod-level one) ("Pod ephemeral local storage usage exceeds the
//     total limit of containers 20Mi. "),
//   - else when a container uses more than its own
//     resources.limits.ephemeral-storage: its log files plus, unless the
//     runtime keeps images on a filesystem of their own, its writable layer
//     ("Container c exceeded its local ephemeral storage limit "5Mi". ").
//
// Evicting is the kubelet's evictPod: a Warning event with reason Evicted
// and the message, then the pod's worker is asked to kill the pod
// (podworkers.Workers.Kill, through Config.Kill) with a grace period of 1 s
// and a status function that makes its final status phase Failed, reason
// Evicted, that message. The kubelet adds no DisruptionTarget condition for
// these evictions (only for node-pressure ones), and neither does this
// package. Nothing here stops a container: the worker does, as for any
// other termination. Critical pods (static, mirror, or of priority
// system-cluster-critical and above) are never evicted, as the kubelet
// refuses to; pods already terminating are not looked at, and a pod is
// evicted once.
//
// Usage comes from Config.Stats (the kubelet API server's stats, the same
// numbers as /stats/summary): volumes are measured as du does, counting
// allocated blocks, without following symbolic links, hard links once, and
// the measure of a volume is reused for a time proportional to its cost
// (package server, volumestats.go). When no pod has a limit to enforce,
// nothing is measured. Memory-backed emptyDirs are tmpfs mounts sized to at
// most their sizeLimit (package volumes), so they cannot grow past it in
// practice; they are checked all the same, as the kubelet checks them.
//
// Node-pressure eviction (pressure.go) follows the kubelet's eviction
// manager. Every period the signals with a threshold of evictionHard or
// evictionSoft are read: memory.available (the summary's: capacity less
// the root cgroup's working set), nodefs.available and nodefs.inodesFree,
// imagefs.available and imagefs.inodesFree, pid.available. A Tracker (thresholds.go) applies the kubelet's
// rules: a threshold is met when its signal is below it; a hard one
// evicts at once, a soft one once it has stayed met for its
// evictionSoftGracePeriod; a threshold that evicted stays met until its
// signal is above it plus its evictionMinimumReclaim. Then one pod is
// evicted per period, memory first, ranked as the kubelet ranks them: by
// working set, local ephemeral storage, inodes (writable layers, logs and
// local volumes) or, for pid.available, priority then process count (for
// disk space and inodes, after unused images were removed and the signals
// read again: when no threshold is met any more, counting minimum
// reclaims, none is; not for a nodefs signal when the image filesystem
// is dedicated, which images do not fill), with
// an EvictionThresholdMet event on the Node ("Attempting to reclaim
// memory"), the kubelet's message ("The node was low on resource: memory.
// Threshold quantity: 100Mi, available: 50Mi. ...") and a grace period of
// 1 s for a hard threshold, or for a soft one evictionMaxPodGracePeriod,
// or the pod's terminationGracePeriodSeconds when shorter, never below
// 1 s (the kubelet's pod worker raises anything lower to 1 s, so that its
// default 0 means 1 s).
//
// Run checks at once, as the kubelet's eviction manager does when it
// starts, then every period. After a period that evicted pods, Run waits
// for them to stop (the channels of their workers' kills), at most 30 s
// as the kubelet's podCleanupTimeout, and checks again a period after
// that, so that a pod
// still stopping is not followed by another evicted for the same
// pressure. The kubelet checks again at once, having waited for the pods'
// resources to be reclaimed; a worker is done once the containers have
// stopped, before they and the volumes are removed.
//
// The same Tracker, with evictionPressureTransitionPeriod, keeps the
// MemoryPressure, DiskPressure and PIDPressure conditions, the one source
// of them: Manager.UnderPressure (the kubelet's IsUnderMemoryPressure and
// the like, safe from any goroutine) is what package nodestatus reports.
// One is on while a threshold of it is met, soft ones before their grace
// period included, and for the transition period after; off before the
// first check, on a nil Manager and for a signal without a threshold.
// With no threshold and no localStorageCapacityIsolation a check does
// nothing; without localStorageCapacityIsolation (Config.LocalStorageLimits)
// the local storage limits are not enforced, the thresholds still are.
//
// A pod's process count (pid.available's ranking) is known when the agent
// knows its cgroup (cgroupsPerQOS, package server); without, every pod
// counts 0 and pid pressure ranks pods by priority alone.
//
// Left out, as nodeagent does not need them or cannot observe them:
// allocatableMemory.available and containerfs.* are not observed; the kubelet's check that stats were
// refreshed since the last period (every read here is fresh), the
// memory-cgroup notifier (kernelMemcgNotification) and the annotations
// of the Evicted event are not implemented.
package eviction
