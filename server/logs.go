package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emicklei/go-restful/v3"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crilogs "k8s.io/cri-client/pkg/logs"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cri"
)

func (s *Server) addContainerLogs(c *restful.Container) {
	ws := new(restful.WebService).Path("/containerLogs")
	ws.Route(ws.GET("/{podNamespace}/{podID}/{containerName}").To(s.getContainerLogs))
	c.Add(ws)
}

// parseLogOptions decodes the query as the kubelet does for the v1
// PodLogOptions: undecodable values are errBadRequest, invalid
// combinations errInvalid, and a stream other than All errBadRequest (the
// split-streams gate is off). The texts say which parameter is wrong where
// the kubelet's say only "Unable to decode query." or "Invalid request.":
// the apiserver checks the same before it asks the node, so only clients
// that talk to the node directly see them.
func parseLogOptions(q url.Values) (*v1.PodLogOptions, error) {
	q = cloneValues(q)
	// "tail" is the old name of tailLines; "all" means no limit.
	if tail := q.Get("tail"); tail != "" {
		q["tailLines"] = []string{tail}
		if tail == "all" {
			delete(q, "tailLines")
		}
	}
	o := &v1.PodLogOptions{}
	var err error
	o.Container = q.Get("container")
	o.Follow = queryBool(q, "follow")
	o.Previous = queryBool(q, "previous")
	o.Timestamps = queryBool(q, "timestamps")
	o.InsecureSkipTLSVerifyBackend = queryBool(q, "insecureSkipTLSVerifyBackend")
	if o.SinceSeconds, err = queryInt64(q, "sinceSeconds"); err != nil {
		return nil, err
	}
	if o.TailLines, err = queryInt64(q, "tailLines"); err != nil {
		return nil, err
	}
	if o.LimitBytes, err = queryInt64(q, "limitBytes"); err != nil {
		return nil, err
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, replyf(errBadRequest, "sinceTime %q is not an RFC 3339 time", v)
		}
		o.SinceTime = &metav1.Time{Time: t}
	}
	if vs, ok := q["stream"]; ok && len(vs) > 0 {
		st := vs[0]
		o.Stream = &st
	}
	if err := validateLogOptions(o); err != nil {
		return nil, err
	}
	if o.Stream != nil && *o.Stream != v1.LogStreamAll {
		// The kubelet's words: the split-streams gate is alpha, off.
		return nil, replyf(errBadRequest, "unable to return the given log stream: %q. Please enable PodLogsQuerySplitStreams feature gate in kubelet", *o.Stream)
	}
	return o, nil
}

// validateLogOptions is the apiserver's PodLogOptions validation.
func validateLogOptions(o *v1.PodLogOptions) error {
	var errs []string
	if o.TailLines != nil && *o.TailLines < 0 {
		errs = append(errs, "tailLines must be non-negative")
	}
	if o.LimitBytes != nil && *o.LimitBytes < 1 {
		errs = append(errs, "limitBytes must be greater than 0")
	}
	if o.SinceSeconds != nil && o.SinceTime != nil {
		errs = append(errs, "at most one of sinceTime or sinceSeconds may be specified")
	} else if o.SinceSeconds != nil && *o.SinceSeconds < 1 {
		errs = append(errs, "sinceSeconds must be greater than 0")
	}
	if o.Stream != nil {
		switch *o.Stream {
		case v1.LogStreamAll, v1.LogStreamStdout, v1.LogStreamStderr:
		default:
			errs = append(errs, fmt.Sprintf("stream %q is not supported", *o.Stream))
		}
		if *o.Stream != v1.LogStreamAll && o.TailLines != nil {
			errs = append(errs, "tailLines and a specific stream are mutually exclusive")
		}
	}
	if len(errs) > 0 {
		return replyf(errInvalid, "%s", strings.Join(errs, "; "))
	}
	return nil
}

func cloneValues(q url.Values) url.Values {
	out := make(url.Values, len(q))
	for k, v := range q {
		out[k] = v
	}
	return out
}

// queryBool reads a boolean as the API's parameter conversion does: absent
// is false, "0" and "false" are false, anything else is true.
func queryBool(q url.Values, key string) bool {
	vs, ok := q[key]
	if !ok || len(vs) == 0 {
		return false
	}
	return vs[0] != "0" && !strings.EqualFold(vs[0], "false")
}

func queryInt64(q url.Values, key string) (*int64, error) {
	vs := q[key]
	if len(vs) == 0 || vs[0] == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(vs[0], 10, 64)
	if err != nil {
		return nil, replyf(errBadRequest, "%s %q is not an integer", key, vs[0])
	}
	return &n, nil
}

// criLogOptions turns PodLogOptions into cri-client's LogOptions.
func criLogOptions(o *v1.PodLogOptions, now time.Time) *crilogs.LogOptions {
	lo := &crilogs.LogOptions{TailLines: o.TailLines, LimitBytes: o.LimitBytes, Follow: o.Follow, Timestamp: o.Timestamps}
	if o.SinceSeconds != nil {
		lo.Since = now.Add(-time.Duration(*o.SinceSeconds) * time.Second)
	}
	if o.SinceTime != nil {
		lo.Since = o.SinceTime.Time
	}
	return lo
}

func (s *Server) getContainerLogs(req *restful.Request, resp *restful.Response) {
	ctx := req.Request.Context()
	logger := klog.FromContext(ctx)
	ns, name, ctr := req.PathParameter("podNamespace"), req.PathParameter("podID"), req.PathParameter("containerName")
	opts, err := parseLogOptions(req.Request.URL.Query())
	if err != nil {
		writeErrorText(logger, resp, err)
		return
	}
	// The kubelet's words for an unknown pod or container
	// (server.go getContainerLogs).
	pod, err := s.podByName(ns, name, "")
	if err != nil {
		writeErrorText(logger, resp, replyf(errNotFound, "pod %q does not exist", name))
		return
	}
	if !hasContainer(pod, ctr) {
		writeErrorText(logger, resp, replyf(errNotFound, "container %q not found in pod %q", ctr, name))
		return
	}
	id, path, err := s.logFile(ctx, pod, ctr, opts.Previous)
	if err != nil {
		writeErrorText(logger, resp, err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		writeErrorText(logger, resp, replyf(errBadRequest, "failed to open log file %q: %v", path, err))
		return
	}
	_ = f.Close()
	resp.Header().Set("Content-Type", "text/plain")
	resp.Header().Set("Transfer-Encoding", "chunked")
	resp.WriteHeader(http.StatusOK)
	fw := newCoalescingWriter(resp.ResponseWriter)
	defer func() { _ = fw.Close() }()
	if err := crilogs.ReadLogs(ctx, path, id, criLogOptions(opts, time.Now()), s.deps.Runtime, fw, fw); err != nil {
		// The status line is gone; the stream just ends.
		logger.V(2).Info("Reading container log ended with an error", "pod", klog.KObj(pod), "container", ctr, "err", err)
	}
}

// logFile returns the runtime's id and the log path of the container whose
// log a request for ctr reads. Which container that is comes from the
// pod's status, as in the kubelet's GetKubeletContainerLogs
// (logContainerID). The status only points: the runtime must say the
// container is the agent's, of this pod and of that name (whoever may
// patch pods/status could point it at another pod's container), and the
// log path is the runtime's, accepted only inside the pod's own log
// directory.
func (s *Server) logFile(ctx context.Context, pod *v1.Pod, ctr string, previous bool) (string, string, error) {
	ref, err := logContainerID(pod.Name, s.podStatus(pod), ctr, previous)
	if err != nil {
		return "", "", err
	}
	// The kubelet's words when the runtime does not know the container
	// (kuberuntime GetContainerLogs); the cause is logged.
	unknown := replyf(errBadRequest, "unable to retrieve container logs for %s", ref)
	id := runtimeID(ref)
	if id == "" {
		return "", "", unknown
	}
	res, err := s.deps.Runtime.ContainerStatus(ctx, id, false)
	st := res.GetStatus()
	if err != nil || st == nil {
		klog.FromContext(ctx).V(4).Info("Failed to get container status", "pod", klog.KObj(pod), "containerID", ref, "err", err)
		return "", "", unknown
	}
	l := st.GetLabels()
	if !cri.IsManaged(l) || cri.PodUID(l) != pod.UID || l[cri.ContainerNameLabel] != ctr {
		return "", "", replyf(errBadRequest, "unable to retrieve container logs for %s: not container %q of pod %q", ref, ctr, pod.Name)
	}
	podDir := cri.PodLogDir(s.cfg.PodLogsDir, pod.Namespace, pod.Name, pod.UID)
	path, err := pathWithin(podDir, st.GetLogPath())
	if err != nil {
		return "", "", err
	}
	return st.GetId(), path, nil
}

// podStatus is the status a pod's logs go by: the agent's own latest, as
// the kubelet's status manager's copy, else the pod object's (after a
// restart of the agent, before its first write). For a static pod, pod is
// the static pod podByName resolved, so both are the agent's of the
// static pod, never the mirror object's own.
func (s *Server) podStatus(pod *v1.Pod) *v1.PodStatus {
	if s.deps.PodStatus != nil {
		if st, ok := s.deps.PodStatus(pod.UID); ok && st != nil {
			return st
		}
	}
	return &pod.Status
}

// logContainerID returns the containerID (<type>://<id>) whose log a
// request for container ctr of pod podName reads, from the pod's status,
// as the kubelet's validateContainerLogStatus, cases and words: for
// previous the last terminated instance; else the running one, the
// terminated one (its last state if it has no ID: the next instance never
// started), the last terminated one; a waiting container with no earlier
// instance has no log yet.
func logContainerID(podName string, status *v1.PodStatus, ctr string, previous bool) (string, error) {
	cs, ok := statusNamed(status.ContainerStatuses, ctr)
	if !ok {
		cs, ok = statusNamed(status.InitContainerStatuses, ctr)
	}
	if !ok {
		cs, ok = statusNamed(status.EphemeralContainerStatuses, ctr)
	}
	if !ok {
		return "", replyf(errBadRequest, "container %q in pod %q is not available", ctr, podName)
	}
	last := cs.LastTerminationState.Terminated
	state := cs.State
	switch {
	case previous:
		if last == nil || last.ContainerID == "" {
			return "", replyf(errBadRequest, "previous terminated container %q in pod %q not found", ctr, podName)
		}
		return last.ContainerID, nil
	case state.Running != nil:
		return cs.ContainerID, nil
	case state.Terminated != nil:
		if state.Terminated.ContainerID != "" {
			return state.Terminated.ContainerID, nil
		}
		if last != nil && last.ContainerID != "" {
			return last.ContainerID, nil
		}
		return "", replyf(errBadRequest, "container %q in pod %q is terminated", ctr, podName)
	case last != nil:
		if last.ContainerID == "" {
			return "", replyf(errBadRequest, "container %q in pod %q is terminated", ctr, podName)
		}
		return last.ContainerID, nil
	case state.Waiting != nil:
		// The most common reasons for no log yet, in plain words.
		switch reason := state.Waiting.Reason; reason {
		case "ErrImagePull":
			return "", replyf(errBadRequest, "container %q in pod %q is waiting to start: image can't be pulled", ctr, podName)
		case "ImagePullBackOff":
			return "", replyf(errBadRequest, "container %q in pod %q is waiting to start: trying and failing to pull image", ctr, podName)
		default:
			return "", replyf(errBadRequest, "container %q in pod %q is waiting to start: %v", ctr, podName, reason)
		}
	}
	return "", replyf(errBadRequest, "container %q in pod %q is waiting to start - no logs yet", ctr, podName)
}

// statusNamed returns the status of container name among statuses.
func statusNamed(statuses []v1.ContainerStatus, name string) (v1.ContainerStatus, bool) {
	for _, cs := range statuses {
		if cs.Name == name {
			return cs, true
		}
	}
	return v1.ContainerStatus{}, false
}

// runtimeID is the runtime's id in a status's containerID
// (<type>://<id>), empty if it has none, as kubecontainer.ParseContainerID.
func runtimeID(containerID string) string {
	_, id, ok := strings.Cut(containerID, "://")
	if !ok || strings.Contains(id, "://") {
		return ""
	}
	return id
}

// containersByName lists the agent's containers of that name in the pod,
// newest first.
func (s *Server) containersByName(ctx context.Context, uid types.UID, name string) ([]*runtimeapi.Container, error) {
	f := cri.ManagedContainerFilter(uid)
	f.LabelSelector[cri.ContainerNameLabel] = name
	cs, err := s.deps.Runtime.ListContainers(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list containers of pod %s: %w", uid, err)
	}
	var out []*runtimeapi.Container
	for _, c := range cs {
		// Filters are the runtime's; check them again.
		if cri.IsManaged(c.Labels) && cri.PodUID(c.Labels) == uid && c.Labels[cri.ContainerNameLabel] == name {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := cri.RestartCount(out[i].Annotations), cri.RestartCount(out[j].Annotations)
		if ri != rj {
			return ri > rj
		}
		return out[i].CreatedAt > out[j].CreatedAt
	})
	return out, nil
}

// pathWithin returns the cleaned path if it lies strictly inside dir, also
// after resolving symbolic links (the log reader follows them).
func pathWithin(dir, path string) (string, error) {
	if path == "" || !filepath.IsAbs(path) || strings.ContainsRune(path, 0) {
		return "", replyf(errBadRequest, "invalid log path %q", path)
	}
	dir, path = filepath.Clean(dir), filepath.Clean(path)
	if !strings.HasPrefix(path, dir+string(filepath.Separator)) {
		return "", replyf(errBadRequest, "log path %q is outside %s", path, dir)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", replyf(errBadRequest, "log dir %s: %v", dir, err)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", replyf(errBadRequest, "log path %q: %v", path, err)
	}
	if !strings.HasPrefix(real, realDir+string(filepath.Separator)) {
		return "", replyf(errBadRequest, "log path %q resolves outside %s", path, dir)
	}
	return real, nil
}
