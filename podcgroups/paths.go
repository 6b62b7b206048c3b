package podcgroups

import (
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The names of pod cgroups with the cgroupfs driver and cgroupsPerQOS, as
// the kubelet gives them: the agent creates them (a sandbox's cgroup
// parent), reads their usage (the stats summary) and removes them once
// their pod is gone. These functions are that naming's one home; they need
// no Manager, which exists only when the agent writes pod limits.

// QOSDirs are the directories of the QoS classes under kubepods
// (guaranteed pods sit in kubepods itself).
var QOSDirs = []string{"", "burstable", "besteffort"}

// PodPath is the cgroup of a pod of the QoS class qos below root (the
// cgroupRoot), as a path inside a hierarchy.
func PodPath(root string, qos v1.PodQOSClass, uid types.UID) string {
	if root == "" {
		root = "/"
	}
	var dir string
	switch qos {
	case v1.PodQOSBurstable:
		dir = "burstable"
	case v1.PodQOSBestEffort:
		dir = "besteffort"
	}
	return filepath.Join(root, "kubepods", dir, "pod"+string(uid))
}

// PodPaths are the paths the pod's cgroup may have, one per QoS class.
func PodPaths(root string, uid types.UID) []string {
	if root == "" {
		root = "/"
	}
	out := make([]string, 0, len(QOSDirs))
	for _, qos := range QOSDirs {
		out = append(out, filepath.Join(root, "kubepods", qos, "pod"+string(uid)))
	}
	return out
}

// Hierarchies are the mounted hierarchies below mount (/sys/fs/cgroup):
// mount itself on cgroup v2; on v1, mount and each directory in it (a
// controller's mount, or "unified"). On v2 those directories are cgroups
// (another agent's root perhaps), never hierarchies to scan.
func Hierarchies(mount string) []string {
	if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err == nil {
		return []string{mount}
	}
	return append([]string{mount}, globDirs(filepath.Join(mount, "*"))...)
}

// PodDirs are the pod cgroup directories under root's kubepods in every
// hierarchy below mount.
func PodDirs(mount, root string) []string {
	var out []string
	for _, h := range Hierarchies(mount) {
		for _, qos := range QOSDirs {
			out = append(out, globDirs(filepath.Join(h, root, "kubepods", qos, "pod*"))...)
		}
	}
	return out
}

// globDirs are the directories (not links to them) matching pattern.
func globDirs(pattern string) []string {
	matches, _ := filepath.Glob(pattern)
	out := matches[:0]
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.IsDir() {
			out = append(out, m)
		}
	}
	return out
}
