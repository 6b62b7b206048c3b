package volumes

import (
	"context"
	"fmt"
	"os"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/hugepages"
	"github.com/nodeagent/nodeagent/podcgroups"
)

// Mounter makes the mounts of pod volumes: the tmpfs of memory-backed
// emptyDir, secret and projected volumes, the hugetlbfs of huge page
// emptyDirs, and the bind mounts of subPaths.
type Mounter interface {
	// MountTmpfs mounts a tmpfs of at most sizeBytes (no limit when 0)
	// with the given mode on target.
	MountTmpfs(target string, sizeBytes int64, mode os.FileMode) error
	// MountHugetlbfs mounts a hugetlbfs of pages of pageSize bytes on
	// target, its root as hugetlbfs makes it (0755, root's).
	MountHugetlbfs(target string, pageSize int64) error
	// BindMount bind-mounts source on target.
	BindMount(source, target string) error
	Unmount(target string) error
	// IsMountPoint reports whether a tmpfs (another device) is mounted on
	// path.
	IsMountPoint(path string) (bool, error)
	// MountPoints lists the mount points at or below dir, deepest first.
	MountPoints(dir string) ([]string, error)
}

func (m *Manager) setupEmptyDir(ctx context.Context, pod *v1.Pod, name, dir string, src *v1.EmptyDirVolumeSource) error {
	if err := m.mkdirNoFollow(dir, 0o755); err != nil {
		return err
	}
	medium := v1.StorageMediumDefault
	if src != nil {
		medium = src.Medium
	}
	switch {
	case medium == v1.StorageMediumDefault:
	case medium == v1.StorageMediumMemory:
		// A tmpfs's default mode, which the kubelet keeps (it passes no
		// mode=): everyone may write, the sticky bit set.
		if err := m.mountTmpfs(ctx, pod, name, dir, src.SizeLimit, os.ModeSticky|0o777); err != nil {
			return err
		}
	case hugepages.IsMedium(medium): // HugePages, HugePages-<size>
		if err := m.mountHugetlbfs(ctx, pod, name, dir, medium); err != nil {
			return err
		}
	default:
		return unsupported(name, fmt.Sprintf("emptyDir medium %q", medium))
	}
	// The root is world-writable as the kubelet's (its setupDir's 0777,
	// which the umask must not narrow): any of the pod's users may write
	// it; a tmpfs's keeps the sticky bit of the tmpfs default (1777). A
	// hugetlbfs's stays as mounted (0755, root's), as the kubelet mounts
	// it with no mode: huge pages are for the pod's root user and, with
	// an fsGroup, that group's.
	mode := os.FileMode(0o777)
	if medium == v1.StorageMediumMemory {
		mode |= os.ModeSticky
	}
	if hugepages.IsMedium(medium) {
		fi, err := os.Lstat(dir)
		if err != nil {
			return err
		}
		mode = fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
	}
	// As the kubelet's SetVolumeOwnership of a new emptyDir: the pod's
	// fsGroup owns it and may read, write and search it, setgid so that
	// what containers create inherits the group. Only the root: what
	// containers wrote is theirs, and a walk through it could be raced
	// into following their links.
	if g := fsGroup(pod); g != nil {
		if err := os.Chown(dir, -1, int(*g)); err != nil {
			return err
		}
		mode |= 0o770 | os.ModeSetgid
	}
	return os.Chmod(dir, mode)
}

// mountTmpfs mounts a tmpfs on dir unless one is there, sized as the
// kubelet sizes memory-backed volumes (memoryVolumeSize).
func (m *Manager) mountTmpfs(ctx context.Context, pod *v1.Pod, name, dir string, sizeLimit *resource.Quantity, mode os.FileMode) error {
	logger := klog.FromContext(ctx)
	if m.Mounter == nil {
		logger.V(2).Info("Not running as root, memory-backed volume is a plain directory", "pod", klog.KObj(pod), "volume", name)
		return nil
	}
	mounted, err := m.Mounter.IsMountPoint(dir)
	if err != nil {
		return err
	}
	if mounted {
		return nil
	}
	size := m.memoryVolumeSize(pod, sizeLimit)
	if err := m.Mounter.MountTmpfs(dir, size, mode); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	logger.V(4).Info("Mounted tmpfs", "pod", klog.KObj(pod), "volume", name, "sizeBytes", size)
	return nil
}

// mountHugetlbfs mounts a hugetlbfs on dir unless one is there, with the
// page size hugePageSize finds, as the kubelet's setupHugepages. Without
// a Mounter (not root) it fails: a plain directory would not give the
// pod the huge pages it asked for. The pod's huge pages are limited by
// the hugetlb cgroup (the kubelet's too: hugetlbfs has no size), not by
// the mount. The mount has no mode either (its root is 0755, root's):
// setupEmptyDir gives the pod's fsGroup, if any, the right to write it.
func (m *Manager) mountHugetlbfs(ctx context.Context, pod *v1.Pod, name, dir string, medium v1.StorageMedium) error {
	pageSize, err := hugePageSize(pod, medium)
	if err != nil {
		return err
	}
	if m.Mounter == nil {
		return fmt.Errorf("emptyDir medium %s is a hugetlbfs mount, which the agent makes only when it runs as root", medium)
	}
	mounted, err := m.Mounter.IsMountPoint(dir)
	if err != nil {
		return err
	}
	if mounted {
		return nil
	}
	if err := m.Mounter.MountHugetlbfs(dir, pageSize); err != nil {
		return fmt.Errorf("mount hugetlbfs with %s pages on %s: %w", hugepages.ResourceName(pageSize), dir, err)
	}
	klog.FromContext(ctx).V(4).Info("Mounted hugetlbfs", "pod", klog.KObj(pod), "volume", name, "pageSize", pageSize)
	return nil
}

// hugePageSize is the page size of a huge page emptyDir, as the kubelet's
// getPageSizeMountOption: with medium HugePages-<size>, that size, which a
// container (or init container) must request; with HugePages, the one
// size the containers request, an error when they request several (which
// one would the volume have?) or none.
func hugePageSize(pod *v1.Pod, medium v1.StorageMedium) (int64, error) {
	want, err := hugepages.MediumPageSize(medium)
	if err != nil {
		return 0, err
	}
	var found int64
	for _, list := range [][]v1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			for name := range list[i].Resources.Requests {
				size, ok := hugepages.PageSizeOf(name)
				switch {
				case !ok:
				case want == 0 && found != 0 && size != found:
					return 0, fmt.Errorf("medium %s can't be used if containers request several huge page sizes (%s, %s)",
						medium, hugepages.ResourceName(found), hugepages.ResourceName(size))
				case want == 0 || size == want:
					found = size
				}
			}
		}
	}
	if found == 0 {
		return 0, fmt.Errorf("medium %s: huge page storage requested, but no container requests %s", medium, hugePagesWanted(want))
	}
	return found, nil
}

// hugePagesWanted names the resource a huge page medium needs requested.
func hugePagesWanted(pageSize int64) string {
	if pageSize == 0 {
		return "huge pages"
	}
	return string(hugepages.ResourceName(pageSize))
}

// memoryVolumeSize is the size of a memory-backed volume, as the kubelet's
// calculateEmptyDirMemorySize: the node's allocatable memory, or the pod's
// memory limit when it has one (every container declares a memory limit,
// or the pod does in spec.resources) that is smaller, or the volume's sizeLimit when it is smaller still. 0
// (no limit) only when none of them is known.
func (m *Manager) memoryVolumeSize(pod *v1.Pod, sizeLimit *resource.Quantity) int64 {
	var size int64
	if m.NodeAllocatable != nil {
		if q, ok := m.NodeAllocatable()[v1.ResourceMemory]; ok {
			size = q.Value()
		}
	}
	smaller := func(v int64) {
		if v > 0 && (size == 0 || v <= size) {
			size = v
		}
	}
	smaller(podMemoryLimit(pod))
	if sizeLimit != nil {
		smaller(sizeLimit.Value())
	}
	return size
}

// podMemoryLimit is the memory limit of the pod's cgroup, 0 when it has
// none: the kubelet sizes the volume with ResourceConfigForPod, which
// podcgroups.ResourceSettings is (a burstable pod has a limit when every
// container declares one or the pod declares one in spec.resources).
func podMemoryLimit(pod *v1.Pod) int64 {
	return max(podcgroups.ResourceSettings(pod).Memory, 0)
}

// IsLocalEphemeral reports whether a volume counts as the pod's local
// ephemeral storage, as the kubelet's util.IsLocalEphemeralVolume: a
// gitRepo, a configMap, and an emptyDir on the node's disk (not of medium
// Memory or HugePages). Secrets, downwardAPI and projected volumes are
// tmpfs and do not count.
func IsLocalEphemeral(v *v1.Volume) bool {
	return v.GitRepo != nil || v.ConfigMap != nil ||
		v.EmptyDir != nil && v.EmptyDir.Medium == v1.StorageMediumDefault
}
