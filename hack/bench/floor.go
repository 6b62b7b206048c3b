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
	out := fs.String("out", "", "results file (JSON)")
	_ = fs.Parse(args)
	ctx := context.Background()
	rt, err := remote.NewRemoteRuntimeService(ctx, *endpoint, 2*time.Minute, noop.NewTracerProvider(), false)
	if err != nil {
		return err
	}
	r := newResults("floor")
	for i := 0; i < *n; i++ {
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
			return err
		}
		cid, err := rt.CreateContainer(ctx, id, &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
			Image:    &runtimeapi.ImageSpec{Image: *image},
			Command:  []string{"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"},
			LogPath:  "c/0.log",
			Linux:    &runtimeapi.LinuxContainerConfig{},
		}, sb)
		if err != nil {
			return err
		}
		if err := rt.StartContainer(ctx, cid); err != nil {
			return err
		}
		r.Samples["start_floor_ms"] = append(r.Samples["start_floor_ms"], ms(time.Since(t0)))
		t0 = time.Now()
		if err := rt.StopContainer(ctx, cid, 30); err != nil {
			return err
		}
		if err := rt.StopPodSandbox(ctx, id); err != nil {
			return err
		}
		if err := rt.RemovePodSandbox(ctx, id); err != nil {
			return err
		}
		r.Samples["delete_floor_ms"] = append(r.Samples["delete_floor_ms"], ms(time.Since(t0)))
	}
	if *out != "" {
		return r.write(*out)
	}
	return nil
}
