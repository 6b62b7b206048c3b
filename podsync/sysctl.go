package podsync

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/version"
)

// Sysctls, as the kubelet admits them: a pod may set the safe sysctls and
// those matching allowedUnsafeSysctls (a name, or a prefix ending in "*"),
// and none that would change the node's own network or IPC namespace (a
// net.* sysctl in a hostNetwork pod, an IPC one in a hostIPC pod). Any
// other is refused at admission with reason SysctlForbidden. Names may be
// written with "/" separators; they reach the runtime in "." form.

// sysctlForbidden is the kubelet's admission reason for a refused sysctl.
const sysctlForbidden = "SysctlForbidden"

// safeSysctls are the kubelet's safe sysctls, with the kernel version from
// which each is namespaced (and so safe), if it needs one.
var safeSysctls = []struct{ name, kernel string }{
	{"kernel.shm_rmid_forced", ""},
	{"net.ipv4.ip_local_port_range", ""},
	{"net.ipv4.tcp_syncookies", ""},
	{"net.ipv4.ping_group_range", ""},
	{"net.ipv4.ip_unprivileged_port_start", ""},
	{"net.ipv4.ip_local_reserved_ports", "3.16"},
	{"net.ipv4.tcp_keepalive_time", "4.5"},
	{"net.ipv4.tcp_fin_timeout", "4.6"},
	{"net.ipv4.tcp_keepalive_intvl", "4.5"},
	{"net.ipv4.tcp_keepalive_probes", "4.5"},
	{"net.ipv4.tcp_rmem", "4.15"},
	{"net.ipv4.tcp_wmem", "4.15"},
}

// safeSysctlsFor returns the safe sysctls on a kernel; an unknown kernel
// (nil) gets only those that need no version.
func safeSysctlsFor(kernel *version.Version) []string {
	var out []string
	for _, s := range safeSysctls {
		if s.kernel == "" || kernel != nil && kernel.AtLeast(version.MustParseGeneric(s.kernel)) {
			out = append(out, s.name)
		}
	}
	return out
}

// hostKernel is the running kernel's version, nil if unreadable.
var hostKernel = sync.OnceValue(func() *version.Version {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return nil
	}
	v, err := version.ParseGeneric(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	return v
})

// sysctlNamespace is the kernel namespace a sysctl belongs to.
type sysctlNamespace string

const (
	ipcNamespace     sysctlNamespace = "IPC"
	netNamespace     sysctlNamespace = "Net"
	unknownNamespace sysctlNamespace = ""
)

// namespaceOfSysctl returns the namespace of a sysctl or of a prefix (a
// pattern without its "*"): kernel.shm*, kernel.msg*, kernel.sem and
// fs.mqueue.* are IPC, net.* is Net, anything else is not namespaced.
func namespaceOfSysctl(name string) sysctlNamespace {
	switch name {
	case "kernel.sem", "kernel.shm", "kernel.msg",
		"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
		"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni":
		return ipcNamespace
	}
	switch {
	case strings.HasPrefix(name, "net."):
		return netNamespace
	case strings.HasPrefix(name, "fs.mqueue."):
		return ipcNamespace
	}
	return unknownNamespace
}

// normalizeSysctl turns a sysctl written with "/" separators into the "."
// form: net/ipv4/conf/eno2.100/rp_filter is net.ipv4.conf.eno2/100.rp_filter
// (a "." inside a segment becomes "/"). A name whose first separator is a
// "." is already in that form.
func normalizeSysctl(name string) string {
	i := strings.IndexAny(name, "./")
	if i < 0 || name[i] == '.' {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, name)
}

const sysctlMaxLength = 253

var sysctlPattern = regexp.MustCompile(`^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]$`)

// sysctlAllowlist is the set of sysctls a pod may set.
type sysctlAllowlist struct {
	names    map[string]sysctlNamespace
	prefixes map[string]sysctlNamespace
}

// newSysctlAllowlist builds the allowlist from the safe sysctls and the
// allowedUnsafeSysctls patterns. As the kubelet, it refuses a malformed
// pattern and one that is not known to be namespaced: such a sysctl would
// change the node for every pod.
func newSysctlAllowlist(safe, unsafe []string) (*sysctlAllowlist, error) {
	w := &sysctlAllowlist{names: map[string]sysctlNamespace{}, prefixes: map[string]sysctlNamespace{}}
	for _, p := range append(append([]string(nil), safe...), unsafe...) {
		if len(p) > sysctlMaxLength || !sysctlPattern.MatchString(p) {
			return nil, fmt.Errorf("sysctl %q must have at most %d characters and match regex %s", p, sysctlMaxLength, sysctlPattern)
		}
		name := normalizeSysctl(p)
		prefixed := false
		if i := strings.IndexByte(name, '*'); i >= 0 {
			name, prefixed = name[:i], true
		}
		ns := namespaceOfSysctl(name)
		if ns == unknownNamespace {
			return nil, fmt.Errorf("the sysctls %q are not known to be namespaced", name)
		}
		if prefixed {
			w.prefixes[name] = ns
		} else {
			w.names[name] = ns
		}
	}
	return w, nil
}

// CheckAllowedUnsafeSysctls validates the allowedUnsafeSysctls of the
// configuration as the kubelet does at start.
func CheckAllowedUnsafeSysctls(patterns []string) error {
	if _, err := newSysctlAllowlist(nil, patterns); err != nil {
		return fmt.Errorf("allowedUnsafeSysctls: %w", err)
	}
	return nil
}

// check returns why a pod may not set sysctl, or nil.
func (w *sysctlAllowlist) check(sysctl string, hostNet, hostIPC bool) error {
	sysctl = normalizeSysctl(sysctl)
	inHost := func(ns sysctlNamespace) error {
		if ns == ipcNamespace && hostIPC || ns == netNamespace && hostNet {
			return fmt.Errorf("%q not allowed with host %s enabled", sysctl, ns)
		}
		return nil
	}
	if ns, ok := w.names[sysctl]; ok {
		return inHost(ns)
	}
	for p, ns := range w.prefixes {
		if strings.HasPrefix(sysctl, p) {
			return inHost(ns)
		}
	}
	return fmt.Errorf("%q not allowlisted", sysctl)
}

// admitSysctls returns the reason and message for refusing a pod's
// sysctls, or "".
func (s *Syncer) admitSysctls(pod *v1.Pod) (string, string) {
	psc := pod.Spec.SecurityContext
	if psc == nil || len(psc.Sysctls) == 0 {
		return "", ""
	}
	w, err := newSysctlAllowlist(safeSysctlsFor(hostKernel()), s.cfg.AllowedUnsafeSysctls)
	if err != nil {
		// CheckAllowedUnsafeSysctls refused it at start; a Config built
		// without it still must not let a sysctl through.
		return sysctlForbidden, fmt.Sprintf("forbidden sysctl: %v", err)
	}
	for _, sy := range psc.Sysctls {
		if err := w.check(sy.Name, pod.Spec.HostNetwork, pod.Spec.HostIPC); err != nil {
			return sysctlForbidden, fmt.Sprintf("forbidden sysctl: %v", err)
		}
	}
	return "", ""
}

// sandboxSysctls are the pod's sysctls in "." form, for the sandbox.
func sandboxSysctls(pod *v1.Pod) map[string]string {
	out := map[string]string{}
	if psc := pod.Spec.SecurityContext; psc != nil {
		for _, sy := range psc.Sysctls {
			out[normalizeSysctl(sy.Name)] = sy.Value
		}
	}
	return out
}
