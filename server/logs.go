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
// PodLogOptions: undecodable values wrap errBadRequest, invalid
// combinations errInvalid, and a stream other than All errBadRequest (the
// split-streams gate is off).
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
			return nil, fmt.Errorf("sinceTime %q: %w", v, errBadRequest)
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
		return nil, fmt.Errorf("unable to return the given log stream %q: %w", *o.Stream, errBadRequest)
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
		return fmt.Errorf("%s: %w", strings.Join(errs, "; "), errInvalid)
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
		return nil, fmt.Errorf("%s %q: %w", key, vs[0], errBadRequest)
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
		writeError(logger, resp, err)
		return
	}
	pod, err := s.podByName(ns, name, "")
	if err != nil {
		writeError(logger, resp, err)
		return
	}
	if !hasContainer(pod, ctr) {
		writeError(logger, resp, fmt.Errorf("container %q in pod %s: %w", ctr, klog.KObj(pod), errNotFound))
		return
	}
	id, path, err := s.logFile(ctx, pod, ctr, opts.Previous)
	if err != nil {
		writeError(logger, resp, err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		writeError(logger, resp, fmt.Errorf("open log of container %q in pod %s: %w: %w", ctr, klog.KObj(pod), err, errBadRequest))
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

// logFile returns the id and the log path of the newest container of that
// name in the pod, or the one before it for previous. The path is the
// runtime's, accepted only inside the pod's own log directory.
func (s *Server) logFile(ctx context.Context, pod *v1.Pod, ctr string, previous bool) (string, string, error) {
	containers, err := s.containersByName(ctx, pod.UID, ctr)
	if err != nil {
		return "", "", err
	}
	idx := 0
	if previous {
		idx = 1
	}
	if len(containers) <= idx {
		what := "container"
		if previous {
			what = "previous terminated container"
		}
		return "", "", fmt.Errorf("%s %q in pod %s not found: %w", what, ctr, klog.KObj(pod), errBadRequest)
	}
	id := containers[idx].Id
	st, err := s.deps.Runtime.ContainerStatus(ctx, id, false)
	if err != nil {
		return "", "", fmt.Errorf("status of container %q in pod %s: %w", ctr, klog.KObj(pod), err)
	}
	podDir := podLogDir(s.cfg.PodLogsDir, pod.Namespace, pod.Name, pod.UID)
	path, err := pathWithin(podDir, st.GetStatus().GetLogPath())
	if err != nil {
		return "", "", fmt.Errorf("log of container %q in pod %s: %w", ctr, klog.KObj(pod), err)
	}
	return id, path, nil
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

// podLogDir is the kubelet's log directory of a pod.
func podLogDir(root, namespace, name string, uid types.UID) string {
	return filepath.Join(root, namespace+"_"+name+"_"+string(uid))
}

// pathWithin returns the cleaned path if it lies strictly inside dir, also
// after resolving symbolic links (the log reader follows them).
func pathWithin(dir, path string) (string, error) {
	if path == "" || !filepath.IsAbs(path) || strings.ContainsRune(path, 0) {
		return "", fmt.Errorf("log path %q: %w", path, errBadRequest)
	}
	dir, path = filepath.Clean(dir), filepath.Clean(path)
	if !strings.HasPrefix(path, dir+string(filepath.Separator)) {
		return "", fmt.Errorf("log path %q outside %s: %w", path, dir, errBadRequest)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("log dir %s: %w: %w", dir, err, errBadRequest)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("log path %q: %w: %w", path, err, errBadRequest)
	}
	if !strings.HasPrefix(real, realDir+string(filepath.Separator)) {
		return "", fmt.Errorf("log path %q resolves outside %s: %w", path, dir, errBadRequest)
	}
	return real, nil
}
