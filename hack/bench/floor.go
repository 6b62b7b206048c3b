package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace/noop"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
)

// floorCmd starts the same sandbox and container as a pod by direct CRI
// calls (the runtime does the CNI work), with no agent and no apiserver.
func floorCmd(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	endpoint := fs.String("runtime-endpoint", "unix:///var/lib/nodeagent-harness/run/containerd.sock", "CRI endpoint")
	image := fs.String("image", "registry.k8s.io/e2e-test-images/busybox:1.37.0-1", "image")
	n := fs.Int("n", 30, "iterations")
	burst := fs.Int("burst", 30, "sandboxes started at once (0: none)")
	out := fs.String("out", "", "results file (JSON)")
	_ = fs.Parse(args)
	ctx := context.Background()
	rt, err := remote.NewRemoteRuntimeService(ctx, *endpoint, 2*time.Minute, noop.NewTracerProvider(), false)
	if err != nil {
		return err
	}
	r := newResults("floor")
	// startOne starts one sandbox and container; stopOne stops and removes them.
	startOne := func(i int) (string, string, *runtimeapi.PodSandboxConfig, time.Duration, error) {
		uid := fmt.Sprintf("floor-%d-%d", time.Now().UnixNano(), i)
		sb := &runtimeapi.PodSandboxConfig{
			Metadata:     &runtimeapi.PodSandboxMetadata{Name: uid, Namespace: "bench-floor", Uid: uid},
			Hostname:     "floor",
			LogDirectory: "/tmp/bench-floor/" + uid,
			Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/bench-floor/pod" + uid},
		}
		t0 := time.Now()
		id, err := rt.RunPodSandbox(ctx, sb, "")
		if err != nil {
			return "", "", nil, 0, err
		}
		cid, err := rt.CreateContainer(ctx, id, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
			Image:    &runtimeapi.ImageSpec{Image: *image},
			Command:  []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"},
			LogPath:  "c/0.log",
			Linux:    &runtimeapi.LinuxContainerConfig{},
		}, sb)
		if err != nil {
			return "", "", nil, 0, err
		}
		if err := rt.StartContainer(ctx, cid); err != nil {
			return "", "", nil, 0, err
		}
		return id, cid, sb, time.Since(t0), nil
	}
	stopOne := func(id, cid string) (time.Duration, error) {
		t0 := time.Now()
		if err := rt.StopContainer(ctx, cid, 30); err != nil {
			return 0, err
		}
		if err := rt.StopPodSandbox(ctx, id); err != nil {
			return 0, err
		}
		if err := rt.RemovePodSandbox(ctx, id); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	}
	for i := 0; i < *n; i++ {
		id, cid, _, d, err := startOne(i)
		if err != nil {
			return err
		}
		r.Samples["start_floor_ms"] = append(r.Samples["start_floor_ms"], ms(d))
		if d, err = stopOne(id, cid); err != nil {
			return err
		}
		r.Samples["delete_floor_ms"] = append(r.Samples["delete_floor_ms"], ms(d))
	}
	// A burst: the runtime's own limit for pods started at once.
	if *burst > 0 {
		ids := make([][2]string, *burst)
		starts, all, err := parallel(*burst, func(i int) (time.Duration, error) {
			id, cid, _, d, err := startOne(1000 + i)
			ids[i] = [2]string{id, cid}
			return d, err
		})
		if err != nil {
			return err
		}
		r.Samples[fmt.Sprintf("start_burst%d_ms", *burst)] = starts
		r.Values[fmt.Sprintf("burst%d_all_running_ms", *burst)] = ms(all)
		_, all, err = parallel(*burst, func(i int) (time.Duration, error) { return stopOne(ids[i][0], ids[i][1]) })
		if err != nil {
			return err
		}
		r.Values[fmt.Sprintf("burst%d_all_deleted_ms", *burst)] = ms(all)
	}
	if *out != "" {
		return r.write(*out)
	}
	return nil
}
