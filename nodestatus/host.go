package nodestatus

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Host reads what the node status needs from the machine. The real
// implementation reads /proc, /sys and /etc; tests inject a fake.
type Host interface {
	// Memory returns MemTotal and MemAvailable in bytes.
	Memory() (total, available uint64, err error)
	// Filesystem returns the size of the filesystem holding path and
	// what of it is available.
	Filesystem(path string) (FsStats, error)
	// SystemInfo returns the identity of the machine and its kernel.
	// Fields that cannot be read are left empty.
	SystemInfo() SystemInfo
}

// FsStats is the size of a filesystem and what of it is available.
type FsStats struct {
	// Capacity is its size and Available the space available to
	// unprivileged users, in bytes.
	Capacity, Available uint64
	// Inodes is its number of inodes and InodesFree how many are free.
	Inodes, InodesFree uint64
}

// SystemInfo is the host part of v1.NodeSystemInfo.
type SystemInfo struct {
	MachineID     string
	SystemUUID    string
	BootID        string
	KernelVersion string
	OSImage       string
}

// MemoryCapacity is the machine's memory (MemTotal) in bytes, the node's
// memory capacity; 0 if /proc/meminfo cannot be read.
func MemoryCapacity() int64 {
	total, _, err := procHost{}.Memory()
	if err != nil {
		return 0
	}
	return int64(total)
}

// PIDs returns the number of tasks (threads) and their system-wide limit,
// the smaller of kernel.pid_max and kernel.threads-max (the kubelet's
// pidlimit.Stats), for the eviction manager's pid.available.
func PIDs() (running, max uint64, err error) {
	return procHost{}.PIDs()
}

// PIDCapacity is the machine's PID capacity (the smaller of pid_max and
// threads-max); 0 if it cannot be read.
func PIDCapacity() int64 {
	_, limit, err := PIDs()
	if err != nil {
		return 0
	}
	return int64(limit)
}

// procHost is the real Host.
type procHost struct{}

var _ Host = procHost{}

func (procHost) Memory() (uint64, uint64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0, fmt.Errorf("read meminfo: %w", err)
	}
	return parseMemInfo(data)
}

func (procHost) Filesystem(path string) (FsStats, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return FsStats{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bsize := uint64(st.Bsize)
	return FsStats{Capacity: st.Blocks * bsize, Available: st.Bavail * bsize, Inodes: st.Files, InodesFree: st.Ffree}, nil
}

func (procHost) PIDs() (uint64, uint64, error) {
	loadavg, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, 0, fmt.Errorf("read loadavg: %w", err)
	}
	running, err := parseLoadavgProcs(loadavg)
	if err != nil {
		return 0, 0, err
	}
	max, err := readUint("/proc/sys/kernel/pid_max")
	if err != nil {
		return 0, 0, err
	}
	if threads, err := readUint("/proc/sys/kernel/threads-max"); err == nil {
		max = min(max, threads)
	}
	return running, max, nil
}

func readUint(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s %q: %w", path, data, err)
	}
	return v, nil
}

func (procHost) SystemInfo() SystemInfo {
	return SystemInfo{
		MachineID:     readTrimmed("/etc/machine-id"),
		SystemUUID:    readTrimmed("/sys/class/dmi/id/product_uuid"),
		BootID:        readTrimmed("/proc/sys/kernel/random/boot_id"),
		KernelVersion: readTrimmed("/proc/sys/kernel/osrelease"), // uname -r
		OSImage:       osImage(),
	}
}

func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func osImage() string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if data, err := os.ReadFile(p); err == nil {
			if name := parseOSRelease(data); name != "" {
				return name
			}
		}
	}
	return "Linux"
}

// parseMemInfo returns MemTotal and MemAvailable from /proc/meminfo, in bytes.
func parseMemInfo(data []byte) (total, available uint64, err error) {
	var haveTotal, haveAvail bool
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		var dst *uint64
		switch fields[0] {
		case "MemTotal:":
			dst, haveTotal = &total, true
		case "MemAvailable:":
			dst, haveAvail = &available, true
		default:
			continue
		}
		v, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse meminfo %s: %w", fields[0], err)
		}
		if len(fields) > 2 && fields[2] == "kB" {
			v *= 1024
		}
		*dst = v
	}
	if !haveTotal || !haveAvail {
		return 0, 0, fmt.Errorf("meminfo lacks MemTotal or MemAvailable")
	}
	return total, available, nil
}

// parseLoadavgProcs returns the number of scheduling entities from the
// fourth field of /proc/loadavg ("running/total").
func parseLoadavgProcs(data []byte) (uint64, error) {
	fields := strings.Fields(string(data))
	if len(fields) < 4 {
		return 0, fmt.Errorf("parse loadavg %q: too few fields", data)
	}
	_, total, ok := strings.Cut(fields[3], "/")
	if !ok {
		return 0, fmt.Errorf("parse loadavg %q: no process count", data)
	}
	n, err := strconv.ParseUint(total, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse loadavg %q: %w", data, err)
	}
	return n, nil
}

// parseOSRelease returns PRETTY_NAME from an os-release file.
func parseOSRelease(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || k != "PRETTY_NAME" {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			return u
		}
		return strings.Trim(v, `"'`)
	}
	return ""
}
