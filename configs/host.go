package configs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// hostProbe answers the questions CheckHost asks of the machine. Tests
// replace it.
type hostProbe interface {
	// SwapOn reports whether any swap device is active.
	SwapOn() (bool, error)
	// CgroupV2 reports whether /sys/fs/cgroup is the unified (v2) hierarchy.
	CgroupV2() (bool, error)
	// Sysctl reads an integer kernel tunable such as "vm.overcommit_memory".
	Sysctl(name string) (int, error)
	// SetSysctl writes one.
	SetSysctl(name string, value int) error
	// Root reports whether the agent runs as root (effective UID 0).
	Root() bool
}

type linuxHost struct{}

func (linuxHost) SwapOn() (bool, error) {
	data, err := os.ReadFile("/proc/swaps")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	// The first line is a header; any other non-empty line is a swap device.
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	return n > 1, sc.Err()
}

func (linuxHost) CgroupV2() (bool, error) {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func sysctlPath(name string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
}

func (linuxHost) Sysctl(name string) (int, error) {
	data, err := os.ReadFile(sysctlPath(name))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

func (linuxHost) SetSysctl(name string, value int) error {
	return os.WriteFile(sysctlPath(name), []byte(strconv.Itoa(value)), 0o640)
}

func (linuxHost) Root() bool { return os.Geteuid() == 0 }

var host hostProbe = linuxHost{}

// kernelTunable is a kernel setting the kubelet requires.
type kernelTunable struct {
	name string
	want int
}

// kernelTunables are the kubelet's (setupKernelTunables in
// pkg/kubelet/cm/container_manager_linux.go, values from
// k8s.io/component-helpers/node/util/sysctl).
var kernelTunables = []kernelTunable{
	{"vm.overcommit_memory", 1},
	{"vm.panic_on_oom", 0},
	{"kernel.panic", 10},
	{"kernel.panic_on_oops", 1},
	{"kernel.keys.root_maxkeys", 1000000},
	{"kernel.keys.root_maxbytes", 25000000},
}

// kernelTunableMismatches reads the tunables and returns those that differ
// from what the kubelet requires, as "name=got (want want)".
func kernelTunableMismatches() (wrong []kernelTunable, desc []string, err error) {
	for _, kt := range kernelTunables {
		got, err := host.Sysctl(kt.name)
		if err != nil {
			return nil, nil, fmt.Errorf("read kernel tunable %s: %w", kt.name, err)
		}
		if got != kt.want {
			wrong = append(wrong, kt)
			desc = append(desc, fmt.Sprintf("%s=%d (want %d)", kt.name, got, kt.want))
		}
	}
	return wrong, desc, nil
}

// SetupKernelTunables does what the kubelet does with protectKernelDefaults
// false: it sets the kernel tunables the kubelet requires where they
// differ. Not running as root it only warns, in the returned warnings. With
// protectKernelDefaults true it does nothing: CheckHost has refused a host
// whose tunables differ.
func SetupKernelTunables(cfg *kubeletconfigv1beta1.KubeletConfiguration) (changed, warnings []string, err error) {
	if cfg.ProtectKernelDefaults {
		return nil, nil, nil
	}
	wrong, desc, err := kernelTunableMismatches()
	if err != nil {
		return nil, nil, fmt.Errorf("protectKernelDefaults: %w", err)
	}
	if len(wrong) == 0 {
		return nil, nil, nil
	}
	if !host.Root() {
		return nil, []string{"protectKernelDefaults is false but nodeagent is not root and cannot set the kernel tunables the kubelet sets: " + strings.Join(desc, ", ")}, nil
	}
	for i, kt := range wrong {
		if err := host.SetSysctl(kt.name, kt.want); err != nil {
			return changed, nil, fmt.Errorf("protectKernelDefaults is false: set kernel tunable %s: %w", kt.name, err)
		}
		changed = append(changed, desc[i])
	}
	return changed, nil, nil
}

// CheckHost checks the configuration against the machine: with failSwapOn
// the host must have no swap, with failCgroupV1 it must run cgroup v2, with
// protectKernelDefaults its kernel tunables must be the kubelet's. Parse
// calls it; Validate does not, so that configurations can be checked
// anywhere.
func CheckHost(cfg *kubeletconfigv1beta1.KubeletConfiguration) error {
	if cfg.FailSwapOn != nil && *cfg.FailSwapOn {
		on, err := host.SwapOn()
		if err != nil {
			return fmt.Errorf("failSwapOn: check swap: %w", err)
		}
		if on {
			return errors.New("failSwapOn: swap is enabled on this host (see /proc/swaps); turn it off or set failSwapOn: false")
		}
	}
	if cfg.ProtectKernelDefaults {
		_, desc, err := kernelTunableMismatches()
		if err != nil {
			return fmt.Errorf("protectKernelDefaults: %w", err)
		}
		if len(desc) > 0 {
			return fmt.Errorf("protectKernelDefaults: kernel tunables differ from the kubelet's defaults: %s; set them (sysctl -w) or set protectKernelDefaults: false to let nodeagent set them", strings.Join(desc, ", "))
		}
	}
	if cfg.FailCgroupV1 != nil && *cfg.FailCgroupV1 {
		v2, err := host.CgroupV2()
		if err != nil {
			return fmt.Errorf("failCgroupV1: check cgroup version: %w", err)
		}
		if !v2 {
			return errors.New("failCgroupV1: this host uses cgroup v1 (no /sys/fs/cgroup/cgroup.controllers); use cgroup v2 or set failCgroupV1: false")
		}
	}
	return nil
}
