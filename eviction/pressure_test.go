package eviction

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/nodeagent/nodeagent/configs"
	"github.com/nodeagent/nodeagent/staticpods"
)

// hard is a hard threshold of signal.
func hard(signal string, t configs.Threshold) configs.EvictionThreshold {
	return configs.EvictionThreshold{Signal: signal, Threshold: t}
}

// setThresholds makes the fixture's Manager follow ts, afresh.
func (f *fixture) setThresholds(ts ...configs.EvictionThreshold) {
	f.m.cfg.Thresholds = ts
	f.m.tracker = NewTracker(ts, 0)
}

func memPod(uid string, request string, priority int32) *v1.Pod {
	p := pod(uid, "")
	p.Spec.Priority = ptr.To(priority)
	if request != "" {
		p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: resource.MustParse(request)}
	}
	return p
}

func memStats(uid string, workingSet uint64) statsapi.PodStats {
	return statsapi.PodStats{
		PodRef: statsapi.PodReference{UID: uid},
		Memory: &statsapi.MemoryStats{WorkingSetBytes: ptr.To(workingSet)},
		Containers: []statsapi.ContainerStats{{
			Name: "c", Memory: &statsapi.MemoryStats{WorkingSetBytes: ptr.To(workingSet)},
		}},
	}
}

func TestMemoryPressureEvictsOnePodAsTheKubeletRanks(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	f := newFixture(clk)
	available := uint64(50 * mi)
	f.setThresholds(hard("memory.available", configs.Threshold{Quantity: q("100Mi")}))
	f.m.cfg.MemoryCapacity = 1 << 30
	f.m.cfg.Summary = func(context.Context) (*statsapi.Summary, error) {
		return &statsapi.Summary{
			Node: statsapi.NodeStats{Memory: &statsapi.MemoryStats{AvailableBytes: ptr.To(available)}},
			Pods: []statsapi.PodStats{memStats("under", 10*mi), memStats("over-high", 300*mi), memStats("over-low", 200*mi), memStats("over-low-big", 400*mi), memStats("critical", 900*mi)},
		}, nil
	}
	f.pods = []*v1.Pod{
		memPod("under", "64Mi", 0),                                // below its request
		memPod("over-high", "", 1000),                             // above, higher priority
		memPod("over-low", "100Mi", 0),                            // above by 100Mi
		memPod("over-low-big", "", 0),                             // above by 400Mi: first
		memPod("critical", "", staticpods.SystemCriticalPriority), // never
	}
	evicted := f.m.Synchronize(context.Background())
	if len(evicted) != 1 || evicted[0].UID != "over-low-big" {
		t.Fatalf("evicted %v, want over-low-big alone", evicted)
	}
	grace, st, _ := f.kills.get("over-low-big")
	want := "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container c was using 400Mi, request is 0, has larger consumption of memory. "
	if grace != 1 || st.Phase != v1.PodFailed || st.Reason != "Evicted" || st.Message != want {
		t.Errorf("grace %d, status %s %s %q; want 1, Failed Evicted %q", grace, st.Phase, st.Reason, st.Message, want)
	}
	found := false
	for _, c := range st.Conditions {
		if c.Type == v1.DisruptionTarget && c.Reason == v1.PodReasonTerminationByKubelet && c.Message == want {
			found = true
		}
	}
	if !found {
		t.Errorf("no DisruptionTarget condition: %+v", st.Conditions)
	}
	if ev := <-f.recorder.Events; !strings.Contains(ev, "Evicted") || !strings.Contains(ev, "low on resource: memory") {
		t.Errorf("event %q", ev)
	}

	// The next period: the next in rank.
	if evicted := f.m.Synchronize(context.Background()); len(evicted) != 1 || evicted[0].UID != "over-low" {
		t.Fatalf("second period evicted %v, want over-low", evicted)
	}
	// Enough memory again: nothing.
	available = 200 * mi
	if evicted := f.m.Synchronize(context.Background()); len(evicted) != 0 {
		t.Fatalf("evicted %v without pressure", evicted)
	}
	// A percentage threshold: 25% of 1Gi = 256Mi > 200Mi available.
	f.setThresholds(hard("memory.available", configs.Threshold{Percentage: 0.25}))
	if evicted := f.m.Synchronize(context.Background()); len(evicted) != 1 || evicted[0].UID != "over-high" {
		t.Fatalf("evicted %v, want over-high", evicted)
	}
}

func TestDiskPressureReclaimsImagesThenEvicts(t *testing.T) {
	f := newFixture(clocktesting.NewFakeClock(time.Now()))
	const gi = 1 << 30
	available := uint64(5 * gi)
	reclaims := 0
	freedByReclaim := uint64(0)
	f.setThresholds(hard("nodefs.available", configs.Threshold{Percentage: 0.1}))
	f.m.cfg.NodeFs = func(context.Context) (*statsapi.FsStats, error) {
		return &statsapi.FsStats{CapacityBytes: ptr.To(uint64(100 * gi)), AvailableBytes: ptr.To(available)}, nil
	}
	f.m.cfg.ReclaimDisk = func(context.Context) (int64, error) {
		reclaims++
		available += freedByReclaim
		return int64(freedByReclaim), nil
	}
	small := pod("small", "")
	big := pod("big", "")
	f.pods = []*v1.Pod{small, big}
	f.stats = []statsapi.PodStats{usage("small", 0, 1*mi, 1*mi, 2*mi), usage("big", 0, 100*mi, 900*mi, 1000*mi)}

	// Removing images frees enough: no pod is evicted.
	freedByReclaim = 10 * gi
	if evicted := f.m.Synchronize(context.Background()); len(evicted) != 0 || reclaims != 1 {
		t.Fatalf("evicted %v after the images freed enough (%d reclaims)", evicted, reclaims)
	}
	// Not enough: the pod using the most storage goes. (10% of 100Gi in
	// float32, as the kubelet computes it, is 10737418400.)
	available, freedByReclaim = 5*gi, 0
	evicted := f.m.Synchronize(context.Background())
	if len(evicted) != 1 || evicted[0].UID != "big" || reclaims != 2 {
		t.Fatalf("evicted %v (%d reclaims), want big after a reclaim", evicted, reclaims)
	}
	_, st, _ := f.kills.get("big")
	want := "The node was low on resource: ephemeral-storage. Threshold quantity: 10737418400, available: 5Gi. Container c was using 1000Mi, request is 0, has larger consumption of ephemeral-storage. "
	if st.Message != want {
		t.Errorf("message %q, want %q", st.Message, want)
	}
}

// A soft threshold evicts nothing during its grace period, then one pod
// per period with evictionMaxPodGracePeriod, or the pod's own grace
// period when shorter, never below 1 s.
func TestSoftThresholdEvictsAfterItsGracePeriod(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxGrace int64
		podGrace *int64
		want     int64
	}{
		{"capped by evictionMaxPodGracePeriod", 20, ptr.To[int64](60), 20},
		{"the pod's own when shorter", 20, ptr.To[int64](5), 5},
		{"without the pod's, evictionMaxPodGracePeriod", 20, nil, 20},
		{"the default 0 is 1 s", 0, ptr.To[int64](30), 1},
		{"negative is 1 s", -1, ptr.To[int64](30), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Now())
			f := newFixture(clk)
			f.m.cfg.MaxPodGracePeriod = tc.maxGrace
			f.m.cfg.NodeRef = &v1.ObjectReference{Kind: "Node", Name: "n", UID: "n"}
			f.m.cfg.MemoryCapacity = 1 << 30
			f.m.cfg.Summary = func(context.Context) (*statsapi.Summary, error) {
				return &statsapi.Summary{
					Node: statsapi.NodeStats{Memory: &statsapi.MemoryStats{AvailableBytes: ptr.To(uint64(50 * mi))}},
					Pods: []statsapi.PodStats{memStats("a", 300*mi)},
				}, nil
			}
			p := memPod("a", "", 0)
			p.Spec.TerminationGracePeriodSeconds = tc.podGrace
			f.pods = []*v1.Pod{p}
			f.setThresholds(configs.EvictionThreshold{Signal: "memory.available", Threshold: configs.Threshold{Quantity: q("100Mi")}, GracePeriod: 30 * time.Second})

			for _, after := range []time.Duration{0, 29 * time.Second} {
				clk.Step(after)
				if evicted := f.m.Synchronize(context.Background()); len(evicted) != 0 {
					t.Fatalf("evicted %v within the grace period", evicted)
				}
			}
			if n := len(f.recorder.Events); n != 0 {
				t.Fatalf("%d events within the grace period", n)
			}
			clk.Step(time.Second)
			if evicted := f.m.Synchronize(context.Background()); len(evicted) != 1 {
				t.Fatalf("evicted %v after the grace period, want the pod", evicted)
			}
			grace, st, _ := f.kills.get("a")
			msg := "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. Container c was using 300Mi, request is 0, has larger consumption of memory. "
			if grace != tc.want || st.Reason != "Evicted" || st.Message != msg {
				t.Errorf("grace %d, reason %q, message %q; want %d, Evicted, %q", grace, st.Reason, st.Message, tc.want, msg)
			}
			for _, want := range []string{"Warning EvictionThresholdMet Attempting to reclaim memory", "Warning Evicted " + msg} {
				if ev := <-f.recorder.Events; ev != want {
					t.Errorf("event %q, want %q", ev, want)
				}
			}
		})
	}
}

// Unused images are removed first for a disk signal, except for a nodefs
// one with a dedicated image filesystem, which images do not fill: the
// kubelet's buildSignalToNodeReclaimFuncs has no node-level reclaim then
// and a pod is evicted at once.
func TestImageReclaimFollowsTheImageFilesystem(t *testing.T) {
	fsStats := &statsapi.FsStats{
		CapacityBytes: ptr.To(uint64(100 * gi)), AvailableBytes: ptr.To(uint64(5 * gi)),
		Inodes: ptr.To(uint64(1000)), InodesFree: ptr.To(uint64(10)),
	}
	for _, tc := range []struct {
		signal      string
		dedicated   bool
		wantReclaim bool
	}{
		{"nodefs.available", false, true},
		{"nodefs.inodesFree", false, true},
		{"imagefs.available", false, true},
		{"nodefs.available", true, false},
		{"nodefs.inodesFree", true, false},
		{"imagefs.available", true, true},
		{"imagefs.inodesFree", true, true},
	} {
		t.Run(fmt.Sprintf("%s dedicated %v", tc.signal, tc.dedicated), func(t *testing.T) {
			f := newFixture(clocktesting.NewFakeClock(time.Now()))
			f.setThresholds(hard(tc.signal, configs.Threshold{Percentage: 0.1}))
			f.m.cfg.NodeFs = func(context.Context) (*statsapi.FsStats, error) { return fsStats, nil }
			f.m.cfg.ImageFs = func(context.Context) (*statsapi.FsStats, error) { return fsStats, nil }
			reclaims := 0
			f.m.cfg.ReclaimDisk = func(context.Context) (int64, error) { reclaims++; return 0, nil }
			f.pods = []*v1.Pod{pod("a", "")}
			f.stats = []statsapi.PodStats{usage("a", 0, mi, mi, 2*mi)}
			f.dedicated = tc.dedicated
			evicted := f.m.Synchronize(context.Background())
			if len(evicted) != 1 || evicted[0].UID != "a" {
				t.Errorf("evicted %v, want a", evicted)
			}
			if got := reclaims == 1; got != tc.wantReclaim {
				t.Errorf("%d image reclaims, want them %v", reclaims, tc.wantReclaim)
			}
		})
	}
}

// With evictionMinimumReclaim, a disk threshold met stays met until the
// threshold plus the minimum reclaim is available: after removing images
// as after an eviction.
func TestMinimumReclaim(t *testing.T) {
	f := newFixture(clocktesting.NewFakeClock(time.Now()))
	const gi = 1 << 30
	available := uint64(5 * gi)
	freed := uint64(0)
	f.setThresholds(configs.EvictionThreshold{Signal: "nodefs.available", Threshold: configs.Threshold{Percentage: 0.1},
		MinReclaim: &configs.Threshold{Quantity: q("5Gi")}})
	f.m.cfg.NodeFs = func(context.Context) (*statsapi.FsStats, error) {
		return &statsapi.FsStats{CapacityBytes: ptr.To(uint64(100 * gi)), AvailableBytes: ptr.To(available)}, nil
	}
	f.m.cfg.ReclaimDisk = func(context.Context) (int64, error) {
		available += freed
		return int64(freed), nil
	}
	f.pods = []*v1.Pod{pod("a", ""), pod("b", ""), pod("c", "")}
	f.stats = []statsapi.PodStats{usage("a", 0, 0, 3*mi, 3*mi), usage("b", 0, 0, 2*mi, 2*mi), usage("c", 0, 0, mi, mi)}

	// The images free 7Gi: 12Gi is above the threshold (10% of 100Gi,
	// 10737418400 in the kubelet's float32) but not above it plus the
	// minimum reclaim (5Gi): a pod goes.
	freed = 7 * gi
	if evicted := f.m.Synchronize(context.Background()); len(evicted) != 1 || evicted[0].UID != "a" {
		t.Fatalf("evicted %v, want a", evicted)
	}
	// 12Gi available: the threshold is still met, for its minimum reclaim.
	freed = 0
	if evicted := f.m.Synchronize(context.Background()); len(evicted) != 1 || evicted[0].UID != "b" {
		t.Fatalf("evicted %v, want b", evicted)
	}
	// 16Gi: reclaimed.
	available = 16 * gi
	if evicted := f.m.Synchronize(context.Background()); len(evicted) != 0 {
		t.Fatalf("evicted %v with the minimum reclaim available", evicted)
	}
	// Below the threshold again, the images free enough for the
	// minimum reclaim: no pod goes.
	available, freed = 9*gi, 7*gi
	if evicted := f.m.Synchronize(context.Background()); len(evicted) != 0 {
		t.Fatalf("evicted %v after the images freed the minimum reclaim", evicted)
	}
}

// inodeStats is a pod's stats with the inodes of container c's writable
// layer and logs and of its volume data.
func inodeStats(uid string, rootfs, logs, data uint64) statsapi.PodStats {
	return statsapi.PodStats{
		PodRef:      statsapi.PodReference{UID: uid},
		VolumeStats: []statsapi.VolumeStats{{Name: "data", FsStats: statsapi.FsStats{InodesUsed: ptr.To(data)}}},
		Containers: []statsapi.ContainerStats{{
			Name: "c", Rootfs: &statsapi.FsStats{InodesUsed: ptr.To(rootfs)}, Logs: &statsapi.FsStats{InodesUsed: ptr.To(logs)},
		}},
	}
}

// Inode pressure evicts one pod per period as the kubelet's
// rankDiskPressureFunc ranks them by inodes, with its message (no
// container named), after removing unused images.
func TestInodePressureEvictsAsTheKubeletRanks(t *testing.T) {
	f := newFixture(clocktesting.NewFakeClock(time.Now()))
	free := uint64(40)
	f.setThresholds(hard("nodefs.inodesFree", configs.Threshold{Percentage: 0.05}))
	f.m.cfg.NodeFs = func(context.Context) (*statsapi.FsStats, error) {
		return &statsapi.FsStats{CapacityBytes: ptr.To(uint64(gi)), AvailableBytes: ptr.To(uint64(gi)), Inodes: ptr.To(uint64(1000)), InodesFree: ptr.To(free)}, nil
	}
	reclaims := 0
	f.m.cfg.ReclaimDisk = func(context.Context) (int64, error) { reclaims++; return 0, nil }
	secretVol := memPod("secret", "", 0)
	secretVol.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "s"}}}}
	f.pods = []*v1.Pod{
		memPod("few", "", 0),
		memPod("many", "", 0),
		memPod("many-high", "", 1000),
		secretVol, // its volume is not on the node's disk: 1 inode
		memPod("critical", "", staticpods.SystemCriticalPriority),
	}
	f.stats = []statsapi.PodStats{
		inodeStats("few", 10, 1, 5), inodeStats("many", 100, 2, 1000), inodeStats("many-high", 5000, 0, 0),
		inodeStats("secret", 1, 0, 10000), inodeStats("critical", 90000, 0, 0),
	}
	evicted := f.m.Synchronize(context.Background())
	if len(evicted) != 1 || evicted[0].UID != "many" || reclaims != 1 {
		t.Fatalf("evicted %v (%d reclaims), want many after a reclaim", evicted, reclaims)
	}
	grace, st, _ := f.kills.get("many")
	want := "The node was low on resource: inodes. Threshold quantity: 50, available: 40. "
	if grace != 1 || st.Phase != v1.PodFailed || st.Reason != "Evicted" || st.Message != want {
		t.Errorf("grace %d, status %s %s %q; want 1, Failed Evicted %q", grace, st.Phase, st.Reason, st.Message, want)
	}
	for _, wantNext := range []types.UID{"few", "secret", "many-high"} {
		if evicted := f.m.Synchronize(context.Background()); len(evicted) != 1 || evicted[0].UID != wantNext {
			t.Fatalf("evicted %v, want %s", evicted, wantNext)
		}
	}
	if evicted := f.m.Synchronize(context.Background()); len(evicted) != 0 {
		t.Fatalf("evicted %v; only the critical pod is left", evicted)
	}
	// Enough inodes again: nothing, not even a reclaim.
	free, reclaims = 500, 0
	f.pods = append(f.pods, memPod("new", "", 0))
	f.stats = append(f.stats, inodeStats("new", 100, 0, 0))
	if evicted := f.m.Synchronize(context.Background()); len(evicted) != 0 || reclaims != 0 {
		t.Fatalf("evicted %v (%d reclaims) without pressure", evicted, reclaims)
	}
}

// What counts for each inode signal, as the kubelet's
// buildSignalToRankFunc: everything without a dedicated image
// filesystem; with one, logs and local volumes for nodefs and writable
// layers for imagefs.
func TestInodeUse(t *testing.T) {
	p := memPod("p", "", 0)
	p.Spec.Volumes = append(p.Spec.Volumes,
		v1.Volume{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}},
		v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}})
	st := inodeStats("p", 10, 1, 100)
	st.VolumeStats = append(st.VolumeStats,
		statsapi.VolumeStats{Name: "cm", FsStats: statsapi.FsStats{InodesUsed: ptr.To(uint64(1000))}},
		statsapi.VolumeStats{Name: "mem", FsStats: statsapi.FsStats{InodesUsed: ptr.To(uint64(10000))}})
	for _, tc := range []struct {
		signal    string
		dedicated bool
		want      int64
	}{
		{"nodefs.inodesFree", false, 1111},
		{"imagefs.inodesFree", false, 1111},
		{"nodefs.inodesFree", true, 1101},
		{"imagefs.inodesFree", true, 10},
	} {
		if got := inodeUse(tc.signal, tc.dedicated)(p, &st); got != tc.want {
			t.Errorf("%s, dedicated image filesystem %v: %d inodes, want %d", tc.signal, tc.dedicated, got, tc.want)
		}
	}
}

// PID pressure evicts one pod per period as the kubelet's
// rankPIDPressure: lower priority first, then without stats, then the
// most processes.
func TestPIDPressureEvictsAsTheKubeletRanks(t *testing.T) {
	f := newFixture(clocktesting.NewFakeClock(time.Now()))
	f.setThresholds(hard("pid.available", configs.Threshold{Percentage: 0.1}))
	f.m.cfg.PIDs = func() (uint64, uint64, error) { return 950, 1000, nil }
	procs := func(uid string, n uint64) statsapi.PodStats {
		return statsapi.PodStats{PodRef: statsapi.PodReference{UID: uid}, ProcessStats: &statsapi.ProcessStats{ProcessCount: ptr.To(n)}}
	}
	f.pods = []*v1.Pod{
		memPod("few", "", 0), memPod("many", "", 0), memPod("most-high", "", 1000),
		memPod("no-stats", "", 0), memPod("no-count", "", 0),
	}
	f.stats = []statsapi.PodStats{procs("few", 5), procs("many", 50), procs("most-high", 500), {PodRef: statsapi.PodReference{UID: "no-count"}}}
	evicted := f.m.Synchronize(context.Background())
	if len(evicted) != 1 || evicted[0].UID != "no-stats" {
		t.Fatalf("evicted %v, want no-stats", evicted)
	}
	_, st, _ := f.kills.get("no-stats")
	want := "The node was low on resource: pids. Threshold quantity: 100, available: 50. "
	if st.Reason != "Evicted" || st.Message != want {
		t.Errorf("status %s %q, want Evicted %q", st.Reason, st.Message, want)
	}
	for _, wantNext := range []types.UID{"many", "few", "no-count", "most-high"} {
		if evicted := f.m.Synchronize(context.Background()); len(evicted) != 1 || evicted[0].UID != wantNext {
			t.Fatalf("evicted %v, want %s", evicted, wantNext)
		}
	}
}
