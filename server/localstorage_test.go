package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	critesting "k8s.io/cri-api/pkg/apis/testing"
)

// PodStorage measures an emptyDir as du does: allocated blocks, without
// following a link out of the volume; the fixture's image filesystem is on
// the root dir's device, so it is not dedicated.
func TestPodStorage(t *testing.T) {
	f := statsFixture(t)
	data := filepath.Join(f.srv.stats.rootDir, "pods", string(testUID), "volumes", "kubernetes.io~empty-dir", "data")
	outside := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(outside, []byte(strings.Repeat("z", 4<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(data, "dirlink")); err != nil {
		t.Fatal(err)
	}
	pods, dedicated, err := f.srv.PodStorage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if dedicated {
		t.Error("image filesystem on the root dir's device reported dedicated")
	}
	if len(pods) != 1 || len(pods[0].VolumeStats) == 0 || pods[0].VolumeStats[0].Name != "data" {
		t.Fatalf("pods: %+v", pods)
	}
	used := *pods[0].VolumeStats[0].UsedBytes
	if used < 10000 || used >= 4<<20 {
		t.Errorf("data uses %d bytes, want its own 10001 bytes in blocks and not the 4 MiB file it links to", used)
	}
	if pods[0].EphemeralStorage == nil || *pods[0].EphemeralStorage.UsedBytes < used {
		t.Errorf("ephemeral storage %+v does not count the volume", pods[0].EphemeralStorage)
	}
}

// ImageFsStats is the runtime's usage with the size of the filesystem
// under the mount point it reports; no filesystem reported is an error.
func TestImageFsStats(t *testing.T) {
	f := statsFixture(t)
	fs, err := f.srv.ImageFsStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if *fs.UsedBytes != 1000 || fs.CapacityBytes == nil || *fs.CapacityBytes == 0 || fs.AvailableBytes == nil || *fs.AvailableBytes > *fs.CapacityBytes {
		t.Errorf("image fs: %+v", fs)
	}
	f.srv.stats.images.(*critesting.FakeImageService).SetFakeFilesystemUsage(nil)
	if _, err := f.srv.ImageFsStats(context.Background()); err == nil {
		t.Error("no image filesystem: no error")
	}
}
