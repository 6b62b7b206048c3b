package podsync

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Security contexts, as the kubelet applies them.
//
// A container's fields override the pod's (runAsUser, runAsGroup,
// runAsNonRoot, seLinuxOptions, seccompProfile, appArmorProfile); the
// others are the container's alone (privileged, capabilities,
// readOnlyRootFilesystem, allowPrivilegeEscalation, procMount) or the
// pod's alone (supplementalGroups and its policy, fsGroup, sysctls).
//
//   - seccompProfile: RuntimeDefault, Unconfined, or Localhost with the
//     profile below <root-dir>/seccomp (a name that leads out of it is
//     refused); unset is RuntimeDefault with seccompDefault: true in the
//     configuration, Unconfined otherwise. The sandbox always runs with
//     RuntimeDefault, as the kubelet's.
//   - appArmorProfile (and the deprecated
//     container.apparmor.security.beta.kubernetes.io/<container>
//     annotations): passed to the runtime; a pod that asks for a profile
//     other than Unconfined on a host without AppArmor is refused at
//     admission (reason AppArmor).
//   - runAsNonRoot: checked against runAsUser, else against the user of
//     the image (CreateContainerConfigError when it is, or may be, root).
//     runAsGroup without runAsUser runs the image's user (root when the
//     image names none) with that group: the runtime needs a user beside a
//     group, which the kubelet takes from the image.
//   - procMount Unmasked: no masked or read-only /proc paths; Default: the
//     kubelet's lists.
//   - supplementalGroupsPolicy: Merge or Strict to the runtime; Strict is
//     refused at admission (SupplementalGroupsPolicyNotSupported) when the
//     runtime does not report the feature.
//   - windowsOptions: ignored on Linux, as by the kubelet.
//   - fsGroup: a supplemental group here; volume ownership (and
//     fsGroupChangePolicy, seLinuxChangePolicy) belongs to the volumes.
//
// The image's user is asked of the runtime only when it is needed
// (runAsNonRoot, or runAsGroup without runAsUser), not on every start as
// the kubelet does. One difference follows: the kubelet always passes the
// image's uid as runAsUser, so for an image whose USER is uid:gid the
// runtime looks the group up in the image's /etc/passwd instead; here,
// with neither runAsUser nor runAsGroup set, the runtime applies the
// image's USER as written, group included.

// effectiveSecurityContext is the container's security context with the
// pod's values where the container sets none (the kubelet's
// DetermineEffectiveSecurityContext). Seccomp and AppArmor profiles are
// resolved on their own (seccompProfile, appArmorProfile).
func effectiveSecurityContext(pod *v1.Pod, c *v1.Container) v1.SecurityContext {
	var sc v1.SecurityContext
	if c.SecurityContext != nil {
		sc = *c.SecurityContext.DeepCopy()
	}
	psc := pod.Spec.SecurityContext
	if psc == nil {
		return sc
	}
	if sc.SELinuxOptions == nil && psc.SELinuxOptions != nil {
		o := *psc.SELinuxOptions
		sc.SELinuxOptions = &o
	}
	if sc.RunAsUser == nil && psc.RunAsUser != nil {
		u := *psc.RunAsUser
		sc.RunAsUser = &u
	}
	if sc.RunAsGroup == nil && psc.RunAsGroup != nil {
		g := *psc.RunAsGroup
		sc.RunAsGroup = &g
	}
	if sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil {
		n := *psc.RunAsNonRoot
		sc.RunAsNonRoot = &n
	}
	return sc
}

// containerSecurity is the CRI security context of c. user is the image's
// user when checkContainerSecurity looked it up.
func (s *Syncer) containerSecurity(pod *v1.Pod, c *v1.Container, user *imageUser) *runtimeapi.LinuxContainerSecurityContext {
	sc := effectiveSecurityContext(pod, c)
	out := &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: namespaceOptions(pod),
		SelinuxOptions:   selinuxOptions(sc.SELinuxOptions),
		NoNewPrivs:       sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
		MaskedPaths:      maskedPaths(sc.ProcMount),
		ReadonlyPaths:    readonlyPaths(sc.ProcMount),
	}
	if sc.Privileged != nil {
		out.Privileged = *sc.Privileged
	}
	if sc.ReadOnlyRootFilesystem != nil {
		out.ReadonlyRootfs = *sc.ReadOnlyRootFilesystem
	}
	if caps := sc.Capabilities; caps != nil {
		out.Capabilities = &runtimeapi.Capability{}
		for _, a := range caps.Add {
			out.Capabilities.AddCapabilities = append(out.Capabilities.AddCapabilities, string(a))
		}
		for _, d := range caps.Drop {
			out.Capabilities.DropCapabilities = append(out.Capabilities.DropCapabilities, string(d))
		}
	}
	if sc.RunAsUser != nil {
		out.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
	} else if user != nil {
		if user.uid != nil {
			out.RunAsUser = &runtimeapi.Int64Value{Value: *user.uid}
		}
		out.RunAsUsername = user.name
	}
	if sc.RunAsGroup != nil {
		out.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
	}
	seccomp, err := s.seccompProfile(pod, c)
	if err != nil {
		// checkContainerSecurity refused the container before; never
		// weaker than the runtime's default.
		seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	}
	out.Seccomp = seccomp
	out.Apparmor, out.ApparmorProfile = criAppArmor(appArmorProfile(pod, c))
	out.SupplementalGroups, out.SupplementalGroupsPolicy = supplementalGroups(pod.Spec.SecurityContext)
	return out
}

func selinuxOptions(o *v1.SELinuxOptions) *runtimeapi.SELinuxOption {
	if o == nil {
		return nil
	}
	return &runtimeapi.SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
}

// supplementalGroups are the pod's extra groups (fsGroup first, as the
// kubelet) and their policy.
func supplementalGroups(psc *v1.PodSecurityContext) ([]int64, runtimeapi.SupplementalGroupsPolicy) {
	if psc == nil {
		return nil, runtimeapi.SupplementalGroupsPolicy_Merge
	}
	var groups []int64
	if psc.FSGroup != nil {
		groups = append(groups, *psc.FSGroup)
	}
	groups = append(groups, psc.SupplementalGroups...)
	policy := runtimeapi.SupplementalGroupsPolicy_Merge
	if psc.SupplementalGroupsPolicy != nil && *psc.SupplementalGroupsPolicy == v1.SupplementalGroupsPolicyStrict {
		policy = runtimeapi.SupplementalGroupsPolicy_Strict
	}
	return groups, policy
}

// seccompRoot is the kubelet's seccomp profile root, <root-dir>/seccomp.
func (s *Syncer) seccompRoot() string {
	return filepath.Join(s.cfg.RootDir, "seccomp")
}

// seccompProfile is the container's seccomp profile: its own, else the
// pod's, else the configuration's default.
func (s *Syncer) seccompProfile(pod *v1.Pod, c *v1.Container) (*runtimeapi.SecurityProfile, error) {
	var p *v1.SeccompProfile
	if c.SecurityContext != nil && c.SecurityContext.SeccompProfile != nil {
		p = c.SecurityContext.SeccompProfile
	} else if psc := pod.Spec.SecurityContext; psc != nil && psc.SeccompProfile != nil {
		p = psc.SeccompProfile
	}
	if p == nil {
		if s.cfg.SeccompDefault {
			return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
		}
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	}
	switch p.Type {
	case v1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case v1.SeccompProfileTypeUnconfined:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	case v1.SeccompProfileTypeLocalhost:
		if p.LocalhostProfile == nil || *p.LocalhostProfile == "" {
			return nil, errors.New("localhostProfile must be set if seccompProfile type is Localhost")
		}
		name := *p.LocalhostProfile
		if !descendingPath(name) {
			return nil, fmt.Errorf("seccomp localhostProfile %q must be a relative path below the profile root %s", name, s.seccompRoot())
		}
		return &runtimeapi.SecurityProfile{
			ProfileType:  runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: filepath.Join(s.seccompRoot(), name),
		}, nil
	}
	return nil, fmt.Errorf("unknown seccomp profile type %q", p.Type)
}

// descendingPath reports whether p is relative and has no ".." element, so
// that it stays below any directory it is joined to.
func descendingPath(p string) bool {
	if filepath.IsAbs(p) {
		return false
	}
	for _, elem := range strings.Split(filepath.ToSlash(p), "/") {
		if elem == ".." {
			return false
		}
	}
	return true
}

// appArmorProfile is the container's AppArmor profile: its field, else
// the deprecated annotation, else the pod's field; nil when none is set.
func appArmorProfile(pod *v1.Pod, c *v1.Container) *v1.AppArmorProfile {
	if c.SecurityContext != nil && c.SecurityContext.AppArmorProfile != nil {
		return c.SecurityContext.AppArmorProfile
	}
	if val, ok := pod.Annotations[v1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix+c.Name]; ok {
		switch {
		case val == v1.DeprecatedAppArmorBetaProfileRuntimeDefault:
			return &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeRuntimeDefault}
		case val == v1.DeprecatedAppArmorBetaProfileNameUnconfined:
			return &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeUnconfined}
		case strings.HasPrefix(val, v1.DeprecatedAppArmorBetaProfileNamePrefix):
			name := strings.TrimPrefix(val, v1.DeprecatedAppArmorBetaProfileNamePrefix)
			return &v1.AppArmorProfile{Type: v1.AppArmorProfileTypeLocalhost, LocalhostProfile: &name}
		}
	}
	if psc := pod.Spec.SecurityContext; psc != nil && psc.AppArmorProfile != nil {
		return psc.AppArmorProfile
	}
	return nil
}

// criAppArmor maps an AppArmor profile to CRI, with the deprecated string
// form the kubelet still sends to older runtimes.
func criAppArmor(p *v1.AppArmorProfile) (*runtimeapi.SecurityProfile, string) {
	if p == nil {
		return nil, ""
	}
	switch p.Type {
	case v1.AppArmorProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, v1.DeprecatedAppArmorBetaProfileRuntimeDefault
	case v1.AppArmorProfileTypeLocalhost:
		if p.LocalhostProfile != nil {
			return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: *p.LocalhostProfile},
				v1.DeprecatedAppArmorBetaProfileNamePrefix + *p.LocalhostProfile
		}
	}
	// Unconfined; the others were refused at admission.
	return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, v1.DeprecatedAppArmorBetaProfileNameUnconfined
}

// HostAppArmorEnabled reports whether the host enforces AppArmor, as the
// kubelet tells.
func HostAppArmorEnabled() bool {
	if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
		return false
	}
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 1 && b[0] == 'Y'
}

// allContainers visits the pod's init, app and ephemeral containers.
func allContainers(pod *v1.Pod, visit func(c *v1.Container)) {
	for i := range pod.Spec.InitContainers {
		visit(&pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		visit(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.EphemeralContainers {
		c := v1.Container(pod.Spec.EphemeralContainers[i].EphemeralContainerCommon)
		visit(&c)
	}
}

// admitAppArmor refuses, as the kubelet's AppArmor admission, a pod that
// asks for a confining profile on a host without AppArmor, and a Localhost
// profile without a name.
func (s *Syncer) admitAppArmor(pod *v1.Pod) (string, string) {
	var bad []string
	required := false
	allContainers(pod, func(c *v1.Container) {
		p := appArmorProfile(pod, c)
		if p == nil {
			if _, ok := pod.Annotations[v1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix+c.Name]; ok {
				required = true // a value the API refuses: not silently unconfined
				bad = append(bad, fmt.Sprintf("invalid AppArmor annotation for container %q", c.Name))
			}
			return
		}
		switch p.Type {
		case v1.AppArmorProfileTypeUnconfined:
		case v1.AppArmorProfileTypeRuntimeDefault:
			required = true
		case v1.AppArmorProfileTypeLocalhost:
			required = true
			if p.LocalhostProfile == nil || strings.TrimSpace(*p.LocalhostProfile) == "" {
				bad = append(bad, fmt.Sprintf("invalid empty AppArmor profile name for container %q", c.Name))
			}
		default:
			required = true
			bad = append(bad, fmt.Sprintf("unknown AppArmor profile type %q for container %q", p.Type, c.Name))
		}
	})
	if !required {
		return "", ""
	}
	if !s.cfg.AppArmorEnabled {
		return "AppArmor", "Cannot enforce AppArmor: AppArmor is not enabled on the host"
	}
	if len(bad) > 0 {
		return "AppArmor", "Cannot enforce AppArmor: " + strings.Join(bad, ", ")
	}
	return "", ""
}

// admitSupplementalGroupsPolicy refuses, as the kubelet's admission, a pod
// with supplementalGroupsPolicy Strict when the runtime cannot apply it.
func (s *Syncer) admitSupplementalGroupsPolicy(pod *v1.Pod) (string, string) {
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.SupplementalGroupsPolicy == nil {
		return "", ""
	}
	switch p := *psc.SupplementalGroupsPolicy; p {
	case v1.SupplementalGroupsPolicyMerge:
		return "", ""
	case v1.SupplementalGroupsPolicyStrict:
		if s.cfg.SupplementalGroupsPolicySupported != nil && s.cfg.SupplementalGroupsPolicySupported() {
			return "", ""
		}
		return "SupplementalGroupsPolicyNotSupported", fmt.Sprintf("SupplementalGroupsPolicy=%s is not supported in this node", p)
	default:
		return "SupplementalGroupsPolicyNotSupported", fmt.Sprintf("unsupported supplementalGroupsPolicy: %s", p)
	}
}

// The kubelet's masked and read-only /proc and /sys paths.
var (
	defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	defaultMaskedPaths   = sync.OnceValue(func() []string {
		paths := []string{
			"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
			"/sys/devices/virtual/powercap",
		}
		// Thermal throttle counters leak the host's CPU activity.
		for _, cpu := range possibleCPUs() {
			p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/thermal_throttle", cpu)
			if _, err := os.Stat(p); err == nil {
				paths = append(paths, p)
			}
		}
		return paths
	})
)

// possibleCPUs lists the host's possible CPUs (/sys/devices/system/cpu/possible,
// "0-3,8" for instance), or 0..NumCPU-1 when that cannot be read.
func possibleCPUs() []int {
	fallback := func() []int {
		out := make([]int, runtime.NumCPU())
		for i := range out {
			out[i] = i
		}
		return out
	}
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return fallback()
	}
	var out []int
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		start, err := strconv.Atoi(lo)
		if err != nil {
			return fallback()
		}
		end := start
		if isRange {
			if end, err = strconv.Atoi(hi); err != nil {
				return fallback()
			}
		}
		for i := start; i <= end; i++ {
			out = append(out, i)
		}
	}
	return out
}

func maskedPaths(pm *v1.ProcMountType) []string {
	if pm != nil && *pm == v1.UnmaskedProcMount {
		return []string{}
	}
	return append([]string(nil), defaultMaskedPaths()...)
}

func readonlyPaths(pm *v1.ProcMountType) []string {
	if pm != nil && *pm == v1.UnmaskedProcMount {
		return []string{}
	}
	return append([]string(nil), defaultReadonlyPaths...)
}

// hasPrivilegedContainer reports whether any container of the pod (init,
// sidecar, app or ephemeral) is privileged: the sandbox then is too.
func hasPrivilegedContainer(pod *v1.Pod) bool {
	found := false
	allContainers(pod, func(c *v1.Container) {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			found = true
		}
	})
	return found
}

// imageUser is the user an image runs as: a uid, else a name.
type imageUser struct {
	uid  *int64
	name string
}

// lookupImageUser asks the runtime for the user of c's image. An image
// that names no user runs as root.
func (s *Syncer) lookupImageUser(ctx context.Context, c *v1.Container) (imageUser, error) {
	resp, err := s.images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: c.Image}, false)
	if err != nil {
		return imageUser{}, fmt.Errorf("image status of %q: %w", c.Image, err)
	}
	if img := resp.GetImage(); img != nil {
		if img.Uid != nil {
			uid := img.Uid.Value
			return imageUser{uid: &uid}, nil
		}
		if img.Username != "" {
			return imageUser{name: img.Username}, nil
		}
	}
	root := int64(0)
	return imageUser{uid: &root}, nil
}

// needsImageUser reports whether the container's checks or config need
// the image's user: to verify runAsNonRoot, or to run runAsGroup with a
// user when runAsUser is unset.
func needsImageUser(sc *v1.SecurityContext) bool {
	return sc.RunAsUser == nil && (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot || sc.RunAsGroup != nil)
}

// verifyRunAsNonRoot refuses a container with runAsNonRoot that would run
// as root, or might, with the kubelet's messages.
func verifyRunAsNonRoot(pod *v1.Pod, c *v1.Container, sc *v1.SecurityContext, user imageUser) error {
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		return nil
	}
	who := fmt.Sprintf("(pod: %q, container: %s)", podDesc(pod), c.Name)
	if sc.RunAsUser != nil {
		if *sc.RunAsUser == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy %s", who)
		}
		return nil
	}
	switch {
	case user.uid == nil && user.name != "":
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root %s", user.name, who)
	case user.uid != nil && *user.uid == 0:
		return fmt.Errorf("container has runAsNonRoot and image will run as root %s", who)
	case user.uid != nil:
		if errs := utilvalidation.IsValidUserID(*user.uid); len(errs) > 0 {
			return fmt.Errorf("container has runAsNonRoot and image has an invalid user id (%d). (Must be 1-(%d)): %s %s",
				*user.uid, math.MaxInt32, strings.Join(errs, "; "), who)
		}
	}
	return nil
}

// podDesc is the kubelet's name_namespace(uid) form of a pod.
func podDesc(pod *v1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// checkContainerSecurity runs, before each container start, the checks
// the kubelet makes while it builds the container's config: a valid
// seccomp profile, and runAsNonRoot against the image's user, which it
// looks up only when needed and returns for containerSecurity (nil when
// not looked up). A failure is a CreateContainerConfigError.
func (s *Syncer) checkContainerSecurity(ctx context.Context, pod *v1.Pod, c *v1.Container) (*imageUser, error) {
	if _, err := s.seccompProfile(pod, c); err != nil {
		return nil, err
	}
	sc := effectiveSecurityContext(pod, c)
	if !needsImageUser(&sc) {
		if sc.RunAsNonRoot != nil && *sc.RunAsNonRoot {
			return nil, verifyRunAsNonRoot(pod, c, &sc, imageUser{})
		}
		return nil, nil
	}
	user, err := s.lookupImageUser(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := verifyRunAsNonRoot(pod, c, &sc, user); err != nil {
		return nil, err
	}
	return &user, nil
}
