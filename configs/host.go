package configs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// hostProbe answers the questions CheckHost asks of the machine. Tests
// replace it.
type hostProbe interface {
	// SwapOn reports whether any swap device is active.
	SwapOn() (bool, error)
	// CgroupV2 reports whether /sys/fs/cgroup is the unified (v2) hierarchy.
	CgroupV2() (bool, error)
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

var host hostProbe = linuxHost{}

// CheckHost checks the configuration against the machine: with failSwapOn
// the host must have no swap, with failCgroupV1 it must run cgroup v2. Parse
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
