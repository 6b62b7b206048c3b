//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func TestServerStats(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	pod := busyboxPod("stats", "head -c 2000000 /dev/urandom > /scratch/data; head -c 8000000 /dev/zero | gzip > /dev/null; sleep 3600", v1.RestartPolicyNever)
	pod.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	pod.Spec.Containers[0].Resources.Limits = v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}
	createPod(t, c, ns, pod)
	waitPod(t, c, ns, "stats", 60*time.Second, "running", running)
	admin := nodeClient(t, true)
	var summary statsapi.Summary
	waitFor(t, 30*time.Second, "stats of the pod", func() (bool, error) {
		code, body := nodeGet(t, admin, "GET", "/stats/summary", "")
		if code != 200 {
			return false, fmt.Errorf("%d %s", code, trunc(body))
		}
		summary = statsapi.Summary{}
		if err := json.Unmarshal([]byte(body), &summary); err != nil {
			return false, err
		}
		for _, p := range summary.Pods {
			if p.PodRef.Namespace == ns && p.PodRef.Name == "stats" && len(p.Containers) == 1 {
				ctr := p.Containers[0]
				return ctr.Name == "main" && p.Memory != nil && nonzero(p.Memory.WorkingSetBytes) && nonzero(ctr.Memory.WorkingSetBytes) &&
					p.CPU != nil && nonzero(p.CPU.UsageCoreNanoSeconds) && nonzero(ctr.CPU.UsageCoreNanoSeconds), nil
			}
		}
		return false, fmt.Errorf("pod not listed")
	})
	n := summary.Node
	if n.NodeName != nodeName || n.CPU == nil || !nonzero(n.CPU.UsageCoreNanoSeconds) || n.Memory == nil || !nonzero(n.Memory.WorkingSetBytes) || n.Fs == nil {
		t.Errorf("node stats: %+v", n)
	}
	if n.Runtime == nil || n.Runtime.ImageFs == nil || !nonzero(n.Runtime.ImageFs.UsedBytes) || !nonzero(n.Runtime.ImageFs.CapacityBytes) {
		t.Errorf("node runtime image filesystem: %+v", n.Runtime)
	}
	var ps statsapi.PodStats
	for _, p := range summary.Pods {
		if p.PodRef.Namespace == ns && p.PodRef.Name == "stats" {
			ps = p
		}
	}
	// The emptyDir holds the 2 MB file (a small volume is measured again
	// after a second: the first measure may predate the file).
	waitFor(t, 30*time.Second, "the emptyDir's usage", func() (bool, error) {
		_, body := nodeGet(t, admin, "GET", "/stats/summary", "")
		var s statsapi.Summary
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			return false, err
		}
		for _, p := range s.Pods {
			if p.PodRef.Namespace == ns && p.PodRef.Name == "stats" {
				ps = p
			}
		}
		for _, v := range ps.VolumeStats {
			if v.Name == "scratch" {
				return v.UsedBytes != nil && *v.UsedBytes >= 2000000, nil
			}
		}
		return false, fmt.Errorf("no scratch volume in %+v", ps.VolumeStats)
	})
	var names []string
	for _, v := range ps.VolumeStats {
		names = append(names, v.Name)
	}
	if len(names) != 2 || !strings.HasPrefix(names[0], "kube-api-access-") || names[1] != "scratch" {
		t.Errorf("volume stats of %v, want kube-api-access-* and scratch", names)
	}
	if e := ps.EphemeralStorage; e == nil || e.UsedBytes == nil || *e.UsedBytes < 2000000 || !nonzero(e.CapacityBytes) {
		t.Errorf("ephemeral storage: %+v", e)
	}
	if ctr := ps.Containers[0]; ctr.Rootfs == nil || ctr.Rootfs.UsedBytes == nil || !nonzero(ctr.Rootfs.CapacityBytes) || ctr.Logs == nil {
		t.Errorf("container rootfs %+v logs %+v", ctr.Rootfs, ctr.Logs)
	}

	// cAdvisor's series for the root cgroup, the pod and its container.
	code, body := nodeGet(t, admin, "GET", "/metrics/cadvisor", "")
	// The harness's cgroupRoot (/nodeagent) prefixes the ids.
	podID := `/kubepods/burstable/pod` + ps.PodRef.UID + `"`
	for _, want := range []string{
		`container_cpu_usage_seconds_total{container="",id="/",image="",name="",namespace="",pod=""} `,
		podID + `,image="",name="",namespace="` + ns + `",pod="stats"} `,
		`,interface="eth0",name="",namespace="` + ns + `",pod="stats"} `,
		`container_spec_memory_limit_bytes{container="main",`,
		`namespace="` + ns + `",pod="stats"} 6.7108864e+07`,
		"container_scrape_error 0\n", "machine_cpu_cores{", "machine_memory_bytes{",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics/cadvisor: %d, missing %q", code, want)
		}
	}
	if !t.Failed() {
		t.Logf("/metrics/cadvisor: %d lines", strings.Count(body, "\n"))
	}
	code, body = nodeGet(t, admin, "GET", "/metrics/resource", "")
	ctrLabels, podLabels := `{container="main",namespace="`+ns+`",pod="stats"} `, `{namespace="`+ns+`",pod="stats"} `
	for _, want := range []string{"node_cpu_usage_seconds_total ", "node_memory_working_set_bytes ", "scrape_error 0\n",
		"container_memory_working_set_bytes" + ctrLabels, "container_cpu_usage_seconds_total" + ctrLabels, "pod_memory_working_set_bytes" + podLabels} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics/resource: %d, missing %q", code, want)
		}
	}
}

func nonzero(p *uint64) bool { return p != nil && *p > 0 }

// TestServerLogRotation fills a container's log past the harness's
// containerLogMaxSize (the default 10Mi) and checks that the agent rotates
// it, that a follower started before goes on in the new file and that a
// plain read sees only the current file, as with the kubelet.
func TestServerLogRotation(t *testing.T) {
	c := client(t)
	ns := namespace(t, c)
	pod := createPod(t, c, ns, busyboxPod("chatty", `sleep 2; s=$(head -c 1000 /dev/zero | tr '\0' x); yes $s | head -n 11000; i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done`, v1.RestartPolicyNever))
	waitPod(t, c, ns, "chatty", 60*time.Second, "running", running)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := startKubectl(t, kubectlCmd(ctx, "-n", ns, "logs", "-f", "chatty"))
	followed := make(chan string, 1024)
	go func() {
		defer close(followed)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "tick-") {
				followed <- l
			}
		}
	}()

	// The agent's log directory: <podLogsDir>/<ns>_<name>_<uid>/main.
	dir := filepath.Join("/var/log/pods", ns+"_chatty_"+string(pod.UID), "main")
	var current string
	waitFor(t, 60*time.Second, "a rotated log in "+dir, func() (bool, error) {
		rotated, err := filepath.Glob(filepath.Join(dir, "0.log.*"))
		if err != nil || len(rotated) == 0 {
			return false, err
		}
		b, err := os.ReadFile(filepath.Join(dir, "0.log"))
		if err != nil {
			return false, err
		}
		// A tick that the runtime wrote into the new file.
		for _, l := range strings.Split(string(b), "\n") {
			if i := strings.Index(l, " tick-"); i > 0 {
				current = l[i+1:]
				return true, nil
			}
		}
		return false, fmt.Errorf("no tick in the new file yet")
	})
	seen := false // the follower ends with ctx at the latest
	for l := range followed {
		if seen = l == current; seen {
			break
		}
	}
	if !seen {
		t.Fatalf("follower did not reach %s, the new file's", current)
	}
	// The current file may start with the end of the burst (the pod is
	// best-effort: under load its CPU share is the minimum, and the
	// rotation can come before the burst ends). A read of the current
	// file alone has no more lines than that file has right after.
	got := kubectl(t, "-n", ns, "logs", "chatty")
	b, err := os.ReadFile(filepath.Join(dir, "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	if read, have := strings.Count(got, "\n"), strings.Count(string(b), "\n"); read > have {
		t.Fatalf("a plain read has %d lines, the current file %d: it read the rotated file too (%q)", read, have, trunc(got))
	}
	if !strings.Contains(got, current) {
		t.Fatalf("a plain read without the current file's ticks: %q", trunc(got))
	}
}
