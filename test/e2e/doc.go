// Package e2e holds nodeagent's end-to-end tests. They run (with the e2e
// build tag, as root) against the local cluster of hack/cluster.sh: a real
// kube-apiserver, containerd, runc, CNI plugins and kubectl. `make test`
// starts the cluster, runs them and stops it.
package e2e
