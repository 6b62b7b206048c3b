// Package eviction enforces the local storage limits of pods, as the
// kubelet's eviction manager does on a node with
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
// Node-pressure eviction (pressure.go): below the evictionHard
// memory.available, nodefs.available or imagefs.available threshold one
// pod is evicted per period, ranked as the kubelet ranks them (for disk,
// after unused images were removed). The inode and pid signals and
// evictionSoft evict nothing; the node reports its pressure conditions
// from the evictionHard thresholds (package nodestatus).
package eviction
