package podsync

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cri"
	"github.com/nodeagent/nodeagent/podcgroups"
)

// GarbageCollect removes what belongs to no known pod and what a known pod
// no longer needs: every sandbox and container of pods for which known
// returns false (pods deleted while the agent was down), dead containers
// beyond the newest one per container name (kept for logs --previous),
// dead sandboxes that are not a pod's newest, and log directories of pods
// that are gone. Objects without the agent's label are never touched; they
// are named in one warning. It also drops the resource grants of pods that
// are gone from the checkpoint (checkpoint.go): it is called first once the
// agent's pod list is complete, and that is when resizes of pods whose
// grant came from the checkpoint are decided.
func (s *Syncer) GarbageCollect(ctx context.Context, known func(types.UID) bool) error {
	logger := klog.FromContext(ctx)
	s.forgetGoneGrants(ctx, known)
	listedAt := time.Now()
	all, err := s.runtime.ListPodSandbox(ctx, nil)
	if err != nil {
		return fmt.Errorf("list sandboxes: %w", err)
	}
	if s.network != nil {
		ids := make(map[string]bool, len(all))
		for _, sb := range all {
			ids[sb.Id] = true
		}
		s.network.CollectGarbage(ctx, ids, listedAt)
	}
	if foreign := cri.Unmanaged(all); len(foreign) > 0 {
		names := make([]string, 0, len(foreign))
		for _, sb := range foreign {
			names = append(names, sb.Metadata.GetNamespace()+"/"+sb.Metadata.GetName())
		}
		logger.Info("Warning: the runtime has sandboxes nodeagent did not create; leaving them alone", "sandboxes", names)
	}
	byPod := map[types.UID][]*runtimeapi.PodSandbox{}
	for _, sb := range all {
		if cri.IsManaged(sb.Labels) {
			uid := cri.PodUID(sb.Labels)
			byPod[uid] = append(byPod[uid], sb)
		}
	}
	for uid, sbs := range byPod {
		if !known(uid) {
			md := sbs[0].Metadata
			logger.Info("Removing pod unknown to the apiserver", "pod", md.GetNamespace()+"/"+md.GetName(), "podUID", uid)
			if err := s.removePod(ctx, uid, md.GetNamespace(), md.GetName()); err != nil {
				logger.Error(err, "Removing orphaned pod", "podUID", uid)
			}
			continue
		}
		sort.Slice(sbs, func(i, j int) bool { return sbs[i].CreatedAt > sbs[j].CreatedAt })
		for _, sb := range sbs[1:] {
			if sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
				if err := s.teardownNetwork(ctx, sb, nil); err != nil {
					logger.Error(err, "Tearing down the network of a dead sandbox", "sandbox", sb.Id)
					continue
				}
				if err := s.runtime.RemovePodSandbox(ctx, sb.Id); err != nil {
					logger.Error(err, "Removing dead sandbox", "sandbox", sb.Id)
					continue
				}
				s.forgetSandbox(sb.Id)
			}
		}
	}
	if err := s.gcContainers(ctx); err != nil {
		return err
	}
	ours := make(map[types.UID]bool, len(byPod))
	for uid := range byPod {
		ours[uid] = true
	}
	s.gcLogDirs(ctx, known, ours)
	// A pod with any sandbox, the agent's or not, keeps its cgroup.
	withSandbox := make(map[types.UID]bool, len(all))
	for _, sb := range all {
		withSandbox[types.UID(sb.GetMetadata().GetUid())] = true
	}
	s.gcPodCgroups(ctx, known, withSandbox)
	return nil
}

// gcPodCgroups removes the cgroups of pods that are gone and have no
// sandbox left: an agent killed between a pod's last container and its
// cleanup leaves them, and nothing else would. A cgroup that still holds
// processes is not removed (the kernel refuses) and is named.
func (s *Syncer) gcPodCgroups(ctx context.Context, known func(types.UID) bool, withSandbox map[types.UID]bool) {
	if s.cfg.CgroupDriver == "systemd" || !s.cfg.CgroupsPerQOS {
		return
	}
	seen := map[types.UID]bool{}
	for _, dir := range podcgroups.PodDirs(cgroupMount, s.cfg.CgroupRoot) {
		uid := types.UID(strings.TrimPrefix(filepath.Base(dir), "pod"))
		if seen[uid] || withSandbox[uid] || known(uid) {
			continue
		}
		seen[uid] = true
		// As the kubelet's orphaned pod cgroup cleanup: what still runs
		// there has no sandbox and no pod (a "runc init" left waiting by a
		// create abandoned when the agent died) and is killed first.
		killed := killCgroupProcs(dir)
		klog.FromContext(ctx).Info("Removing the cgroup of a pod that is gone", "podUID", uid, "killedProcesses", killed)
		if killed > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		s.removeCgroups(uid)
		for _, d := range podcgroups.PodDirs(cgroupMount, s.cfg.CgroupRoot) {
			if strings.HasSuffix(d, "/pod"+string(uid)) {
				klog.FromContext(ctx).Info("Warning: the cgroup of a gone pod is still in use; leaving it", "cgroup", d)
			}
		}
	}
}

// killCgroupProcs SIGKILLs the processes of a cgroup and of its children
// (the containers' cgroups) and returns how many it signalled.
func killCgroupProcs(dir string) int {
	n := 0
	var walk func(d string, depth int)
	walk = func(d string, depth int) {
		if b, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 && unix.Kill(pid, unix.SIGKILL) == nil {
					n++
				}
			}
		}
		if depth == 0 {
			return
		}
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() {
				walk(filepath.Join(d, e.Name()), depth-1)
			}
		}
	}
	walk(dir, 2)
	return n
}

// gcContainers removes exited containers beyond the newest per pod and
// container name.
func (s *Syncer) gcContainers(ctx context.Context) error {
	ctrs, err := s.runtime.ListContainers(ctx, cri.ManagedContainerFilter(""))
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	sort.Slice(ctrs, func(i, j int) bool { return ctrs[i].CreatedAt > ctrs[j].CreatedAt })
	seen := map[string]bool{}
	for _, c := range ctrs {
		key := string(cri.PodUID(c.Labels)) + "/" + c.Labels[cri.ContainerNameLabel]
		if !seen[key] {
			seen[key] = true
			continue
		}
		if c.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			continue
		}
		if err := s.runtime.RemoveContainer(ctx, c.Id); err != nil {
			klog.FromContext(ctx).Error(err, "Removing dead container", "containerID", c.Id)
			continue
		}
		s.statuses.forget(c.Id)
		s.unlinkLog(c.Labels[cri.PodNamespaceLabel], c.Labels[cri.PodNameLabel], c.Id)
		s.removeContainerLog(ctx, c)
	}
	return nil
}

// removeContainerLog removes the log file of a removed container and its
// rotated files, as the kubelet's container GC does. The path is the one
// the agent gave the container: <pod log dir>/<name>/<restartCount>.log.
func (s *Syncer) removeContainerLog(ctx context.Context, c *runtimeapi.Container) {
	name := c.Labels[cri.ContainerNameLabel]
	restarts, err := strconv.Atoi(c.Annotations[cri.ContainerRestartCountAnnotation])
	if err != nil || restarts < 0 || name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
		return
	}
	// A pod that mounts /var/log/pods could have put links in the way:
	// the directories are opened one by one without following any.
	podDir := c.Labels[cri.PodNamespaceLabel] + "_" + c.Labels[cri.PodNameLabel] + "_" + c.Labels[cri.PodUIDLabel]
	if !plainName(podDir) {
		return
	}
	dir, err := openLogDir(s.cfg.PodLogsDir, podDir, name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			klog.FromContext(ctx).Error(err, "Removing the log of a removed container", "containerID", c.Id)
		}
		return
	}
	defer func() { _ = dir.Close() }()
	names, _ := dir.Readdirnames(-1)
	current := strconv.Itoa(restarts) + ".log"
	for _, n := range names {
		if n != current && !strings.HasPrefix(n, current+".") {
			continue
		}
		if err := unix.Unlinkat(int(dir.Fd()), n, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			klog.FromContext(ctx).Error(err, "Removing the log of a removed container", "containerID", c.Id, "path", filepath.Join(dir.Name(), n))
		}
	}
}

// openLogDir opens root/names... without following a symbolic link in any
// of the names.
func openLogDir(root string, names ...string) (*os.File, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	path := root
	for _, n := range names {
		path = filepath.Join(path, n)
		next, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		_ = unix.Close(fd)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), path), nil
}

// ownerMarker is the file that marks a pod log directory as nodeagent's.
// Log shippers match <dir>/<container>/*.log and never see it.
const ownerMarker = ".nodeagent"

// makePodLogDir creates the pod's log directory with the owner marker. A
// symbolic link in its place (planted by a pod that mounts the log
// directory) is refused, not followed.
func (s *Syncer) makePodLogDir(pod *v1.Pod) error {
	if err := os.MkdirAll(s.cfg.PodLogsDir, 0o755); err != nil {
		return err
	}
	dir := s.podLogDir(pod)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	d, err := openLogDir(s.cfg.PodLogsDir, filepath.Base(dir))
	if err != nil {
		return fmt.Errorf("pod log directory: %w", err)
	}
	defer func() { _ = d.Close() }()
	fd, err := unix.Openat(int(d.Fd()), ownerMarker, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: filepath.Join(dir, ownerMarker), Err: err}
	}
	return unix.Close(fd)
}

// gcLogDirs removes /var/log/pods/<ns>_<name>_<uid> of pods that are gone,
// when nodeagent made them: they hold its owner marker, or the runtime
// still has a sandbox of that pod with nodeagent's label (directories of
// versions before the marker). A co-resident kubelet's directories are
// left alone, as its sandboxes are.
func (s *Syncer) gcLogDirs(ctx context.Context, known func(types.UID) bool, ours map[types.UID]bool) {
	entries, err := os.ReadDir(s.cfg.PodLogsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		parts := strings.Split(e.Name(), "_")
		if len(parts) != 3 || !e.IsDir() {
			continue
		}
		uid := types.UID(parts[2])
		if known(uid) {
			continue
		}
		dir := filepath.Join(s.cfg.PodLogsDir, e.Name())
		if fi, err := os.Lstat(filepath.Join(dir, ownerMarker)); !ours[uid] && (err != nil || !fi.Mode().IsRegular()) {
			continue
		}
		klog.FromContext(ctx).V(2).Info("Removing log directory of a gone pod", "dir", e.Name())
		if err := os.RemoveAll(dir); err != nil {
			klog.FromContext(ctx).Error(err, "Removing log directory of a gone pod", "dir", dir)
		}
	}
}
