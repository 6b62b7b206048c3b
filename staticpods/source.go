package staticpods

import (
	"context"
	"crypto/md5" //nolint:gosec // the kubelet's static pod UID hash, not for security
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

// Annotations the kubelet uses for static and mirror pods.
const (
	ConfigSourceAnnotation = "kubernetes.io/config.source"
	ConfigHashAnnotation   = "kubernetes.io/config.hash"
	ConfigSeenAnnotation   = "kubernetes.io/config.seen"
	ConfigMirrorAnnotation = "kubernetes.io/config.mirror"
	FileSource             = "file"
)

// IsStatic reports whether pod came from a manifest file.
func IsStatic(pod *v1.Pod) bool {
	return pod.Annotations[ConfigSourceAnnotation] == FileSource
}

// IsMirror reports whether pod is a mirror pod, and of which static pod UID.
func IsMirror(pod *v1.Pod) (types.UID, bool) {
	h, ok := pod.Annotations[ConfigMirrorAnnotation]
	return types.UID(h), ok
}

// SystemCriticalPriority is the kubelet's scheduling.SystemCriticalPriority:
// pods at or above it are critical.
const SystemCriticalPriority int32 = 2000000000

// IsCritical is the kubelet's IsCriticalPod: static and mirror pods, and
// pods of system-critical priority (never evicted).
func IsCritical(pod *v1.Pod) bool {
	if IsStatic(pod) {
		return true
	}
	if _, ok := IsMirror(pod); ok {
		return true
	}
	return pod.Spec.Priority != nil && *pod.Spec.Priority >= SystemCriticalPriority
}

// IsNodeCritical is the kubelet's IsNodeCriticalPod: a critical pod of
// priority class system-node-critical (the lowest OOM score adjustment).
func IsNodeCritical(pod *v1.Pod) bool {
	return IsCritical(pod) && pod.Spec.PriorityClassName == "system-node-critical"
}

// Read returns the static pods defined in dir. Files that do not hold a
// valid pod are named in the returned warnings and skipped.
func Read(dir, nodeName string) ([]*v1.Pod, []string) {
	byPath, bad, err := readDir(dir, nodeName)
	if err != nil {
		return nil, []string{err.Error()}
	}
	pods, dups := sorted(byPath)
	return pods, append(warningsOf(bad), dups...)
}

// readDir reads every manifest of dir: the pods by file, and why each of
// the other files was skipped. A directory that does not exist holds no
// pods; one that cannot be read is the error.
func readDir(dir, nodeName string) (map[string]*v1.Pod, map[string]error, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("read staticPodPath %s: %w", dir, err)
	}
	pods := map[string]*v1.Pod{}
	bad := map[string]error{}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		pod, err := readFile(path, nodeName)
		if errors.Is(err, errNotManifest) {
			continue
		}
		if err != nil {
			bad[path] = err
			continue
		}
		pods[path] = pod
	}
	return pods, bad, nil
}

// sorted returns the pods of byPath sorted by name, and a warning for each
// manifest whose pod has the namespace and name of a pod in a manifest
// before it (by file name): that pod is ignored, as the kubelet's
// filterInvalidPods ignores a duplicate name.
func sorted(byPath map[string]*v1.Pod) ([]*v1.Pod, []string) {
	paths := make([]string, 0, len(byPath))
	for path := range byPath {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	pods := make([]*v1.Pod, 0, len(byPath))
	first := map[string]string{}
	var dups []string
	for _, path := range paths {
		p := byPath[path]
		key := p.Namespace + "/" + p.Name
		if prev, ok := first[key]; ok {
			dups = append(dups, fmt.Sprintf("static pod manifest %s: duplicate pod name %s (also in %s), ignoring it", path, key, prev))
			continue
		}
		first[key] = path
		pods = append(pods, p)
	}
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Name != pods[j].Name {
			return pods[i].Name < pods[j].Name
		}
		return pods[i].Namespace < pods[j].Namespace
	})
	return pods, dups
}

func warningsOf(bad map[string]error) []string {
	var warnings []string
	for path, err := range bad {
		warnings = append(warnings, fmt.Sprintf("static pod manifest %s: %v", path, err))
	}
	sort.Strings(warnings)
	return warnings
}

// errNotManifest marks what readFile skips without a word: a link to a
// directory, as the kubelet does not recurse either.
var errNotManifest = errors.New("not a manifest")

func readFile(path, nodeName string) (*v1.Pod, error) {
	// Only regular files, as the kubelet: reading a FIFO would block the
	// agent's start for good, and a device may never end.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, errNotManifest
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	pod := &v1.Pod{}
	if err := json.Unmarshal(js, pod); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if pod.Kind != "Pod" || (pod.APIVersion != "v1" && pod.APIVersion != "") {
		return nil, fmt.Errorf("kind %q apiVersion %q: want a v1 Pod", pod.Kind, pod.APIVersion)
	}
	if pod.Name == "" {
		return nil, fmt.Errorf("metadata.name is required")
	}
	if len(pod.Spec.Containers) == 0 {
		return nil, fmt.Errorf("spec.containers: at least one container is required")
	}
	applyDefaults(pod)
	h := md5.New() //nolint:gosec // the kubelet's UID for the same manifest
	h.Write(js)
	_, _ = fmt.Fprintf(h, "host:%s", nodeName) // a hash's Write never fails
	_, _ = fmt.Fprintf(h, "file:%s", path)
	hash := hex.EncodeToString(h.Sum(nil))
	if pod.UID == "" {
		pod.UID = types.UID(hash)
	}
	pod.Name = pod.Name + "-" + nodeName
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	// The kubelet validates a manifest's pod as the apiserver would. The
	// name, namespace and UID name directories here (the pod's log
	// directory, its directory under the root dir, both removed with the
	// pod), so at least they must be what the API allows: found by
	// fuzzing, a name "../../x" or a UID "../.." pointed them elsewhere.
	if errs := validation.IsDNS1123Subdomain(pod.Name); len(errs) > 0 {
		return nil, fmt.Errorf("metadata.name %q (with the node name): %s", pod.Name, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(pod.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("metadata.namespace %q: %s", pod.Namespace, strings.Join(errs, "; "))
	}
	if uid := string(pod.UID); uid == "." || uid == ".." || strings.ContainsAny(uid, "/\\\x00") {
		return nil, fmt.Errorf("metadata.uid %q: not a single path component", uid)
	}
	pod.Spec.NodeName = nodeName
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[ConfigHashAnnotation] = string(pod.UID)
	pod.Annotations[ConfigSourceAnnotation] = FileSource
	pod.Annotations[ConfigSeenAnnotation] = time.Now().UTC().Format(time.RFC3339Nano)
	pod.Spec.Tolerations = append(pod.Spec.Tolerations, v1.Toleration{Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoExecute})
	return pod, nil
}

// applyDefaults sets the API defaults the agent relies on (the apiserver
// sets them for pods it stores; a file's pod has none).
func applyDefaults(pod *v1.Pod) {
	s := &pod.Spec
	if s.RestartPolicy == "" {
		s.RestartPolicy = v1.RestartPolicyAlways
	}
	if s.DNSPolicy == "" {
		s.DNSPolicy = v1.DNSClusterFirst
	}
	if s.TerminationGracePeriodSeconds == nil {
		g := int64(30)
		s.TerminationGracePeriodSeconds = &g
	}
	if s.SchedulerName == "" {
		s.SchedulerName = v1.DefaultSchedulerName
	}
	if s.SecurityContext == nil {
		s.SecurityContext = &v1.PodSecurityContext{}
	}
	def := func(c *v1.Container) {
		if c.TerminationMessagePath == "" {
			c.TerminationMessagePath = v1.TerminationMessagePathDefault
		}
		if c.TerminationMessagePolicy == "" {
			c.TerminationMessagePolicy = v1.TerminationMessageReadFile
		}
		if c.ImagePullPolicy == "" {
			c.ImagePullPolicy = v1.PullIfNotPresent
			if tag := c.Image[strings.LastIndex(c.Image, "/")+1:]; !strings.Contains(tag, ":") || strings.HasSuffix(tag, ":latest") {
				c.ImagePullPolicy = v1.PullAlways
			}
		}
		for i := range c.Ports {
			if c.Ports[i].Protocol == "" {
				c.Ports[i].Protocol = v1.ProtocolTCP
			}
		}
	}
	for i := range s.InitContainers {
		def(&s.InitContainers[i])
	}
	for i := range s.Containers {
		def(&s.Containers[i])
	}
	defaultResources(pod)
}

// Watch reads dir now and every period, calling update with the full set
// of static pods whenever it changed. A manifest that stops parsing (caught
// half-written by a non-atomic editor, truncated) keeps the pod it held
// before, with a warning, until it parses again or is removed; a directory
// that cannot be read keeps every pod, as the kubelet sends no update then.
func Watch(ctx context.Context, dir, nodeName string, period time.Duration, update func([]*v1.Pod)) {
	logger := klog.FromContext(ctx)
	last := ""
	warned := map[string]bool{}
	var good map[string]*v1.Pod
	for {
		byPath, bad, err := readDir(dir, nodeName)
		var warnings []string
		if err != nil {
			warnings = []string{err.Error() + ": keeping the static pods read before"}
			byPath = good
		} else {
			for path, ferr := range bad {
				if prev, ok := good[path]; ok {
					byPath[path] = prev
					warnings = append(warnings, fmt.Sprintf("static pod manifest %s: %v: keeping the pod %s it held before", path, ferr, klog.KObj(prev)))
					continue
				}
				warnings = append(warnings, fmt.Sprintf("static pod manifest %s: %v", path, ferr))
			}
		}
		good = byPath
		pods, dups := sorted(byPath)
		warnings = append(warnings, dups...)
		for _, w := range warnings {
			if !warned[w] {
				logger.Info("Warning: " + w)
				warned[w] = true
			}
		}
		var uids []string
		for _, p := range pods {
			uids = append(uids, string(p.UID))
		}
		if key := strings.Join(uids, ","); key != last {
			last = key
			update(pods)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
	}
}
