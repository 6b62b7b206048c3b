// Package cri is nodeagent's access to the container runtime over the
// Container Runtime Interface.
//
// It connects to the runtime and image services with k8s.io/cri-client and
// owns the conventions every CRI object of the agent follows:
//
//   - the labels and annotations the kubelet sets (io.kubernetes.pod.name,
//     io.kubernetes.pod.namespace, io.kubernetes.pod.uid,
//     io.kubernetes.container.name, io.kubernetes.container.restartCount,
//     ...), so that tools which know the kubelet recognise the agent's
//     sandboxes and containers;
//   - one label of the agent's own, ManagedLabel. The agent never stops or
//     removes a sandbox or container without it: a kubelet's leftovers on
//     the same runtime are left alone (and named in a warning by the
//     caller, see Unmanaged).
//
// The package holds no pod logic; podsync decides what to run and uses the
// helpers here to label and recognise what it runs.
package cri
