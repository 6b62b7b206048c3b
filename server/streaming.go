package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/emicklei/go-restful/v3"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/proxy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cri"
)

// runTimeout bounds /run, which has no stream to cancel it.
const runTimeout = 2 * time.Minute

// streamOptions are the remotecommand options of an exec or attach.
type streamOptions struct {
	Stdin, Stdout, Stderr, TTY bool
}

// parseStreamOptions reads the remotecommand query parameters as the
// runtime's stream server does: "1" is true; at least one stream is
// required; a terminal has no separate stderr.
func parseStreamOptions(q url.Values) (streamOptions, error) {
	o := streamOptions{
		Stdin:  q.Get(v1.ExecStdinParam) == "1",
		Stdout: q.Get(v1.ExecStdoutParam) == "1",
		Stderr: q.Get(v1.ExecStderrParam) == "1",
		TTY:    q.Get(v1.ExecTTYParam) == "1",
	}
	if o.TTY && o.Stderr {
		o.Stderr = false
	}
	if !o.Stdin && !o.Stdout && !o.Stderr {
		return o, fmt.Errorf("you must specify at least 1 of stdin, stdout, stderr: %w", errBadRequest)
	}
	return o, nil
}

func (s *Server) addStreaming(c *restful.Container) {
	for _, kind := range []string{"exec", "attach"} {
		ws := new(restful.WebService).Path("/" + kind)
		for _, p := range []string{"/{podNamespace}/{podID}/{containerName}", "/{podNamespace}/{podID}/{uid}/{containerName}"} {
			ws.Route(ws.GET(p).To(s.streamHandler(kind)))
			ws.Route(ws.POST(p).To(s.streamHandler(kind)))
		}
		c.Add(ws)
	}
	ws := new(restful.WebService).Path("/portForward")
	for _, p := range []string{"/{podNamespace}/{podID}", "/{podNamespace}/{podID}/{uid}"} {
		ws.Route(ws.GET(p).To(s.streamHandler("portForward")))
		ws.Route(ws.POST(p).To(s.streamHandler("portForward")))
	}
	c.Add(ws)

	ws = new(restful.WebService).Path("/run")
	for _, p := range []string{"/{podNamespace}/{podID}/{containerName}", "/{podNamespace}/{podID}/{uid}/{containerName}"} {
		ws.Route(ws.POST(p).To(s.run))
	}
	c.Add(ws)
}

// streamHandler asks the runtime for the stream URL of an exec, attach or
// portForward and proxies the upgraded connection to it, or redirects.
func (s *Server) streamHandler(kind string) restful.RouteFunction {
	return func(req *restful.Request, resp *restful.Response) {
		ctx := req.Request.Context()
		logger := klog.FromContext(ctx).WithValues("stream", kind)
		ctx = klog.NewContext(ctx, logger)
		u, opts, err := s.streamURL(ctx, kind, req)
		if err != nil {
			writeError(logger, resp, err)
			return
		}
		var h http.Handler = proxy.NewUpgradeAwareHandler(u, nil, false, true, &responder{logger: logger})
		if ws := webSocketHandler(logger, kind, u, req.Request, opts, h); ws != nil {
			h = ws
		} else if s.cfg.RedirectStreaming {
			http.Redirect(resp.ResponseWriter, req.Request, u.String(), http.StatusFound)
			return
		}
		h.ServeHTTP(resp.ResponseWriter, req.Request)
	}
}

// streamURL returns the runtime's stream URL and the stream options of
// the request (none for portForward).
func (s *Server) streamURL(ctx context.Context, kind string, req *restful.Request) (*url.URL, streamOptions, error) {
	ns, name := req.PathParameter("podNamespace"), req.PathParameter("podID")
	uid := types.UID(req.PathParameter("uid"))
	var opts streamOptions
	if kind != "portForward" {
		var err error
		if opts, err = parseStreamOptions(req.Request.URL.Query()); err != nil {
			return nil, opts, err
		}
	}
	pod, err := s.podByName(ns, name, uid)
	if err != nil {
		return nil, opts, err
	}
	var raw string
	switch kind {
	case "portForward":
		sb, err := s.sandbox(ctx, pod)
		if err != nil {
			return nil, opts, err
		}
		r, err := s.deps.Runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: sb})
		if err != nil {
			return nil, opts, fmt.Errorf("port-forward to pod %s: %w", klog.KObj(pod), err)
		}
		raw = r.Url
	case "exec":
		id, err := s.runningContainer(ctx, pod, req.PathParameter("containerName"))
		if err != nil {
			return nil, opts, err
		}
		r, err := s.deps.Runtime.Exec(ctx, &runtimeapi.ExecRequest{
			ContainerId: id, Cmd: req.Request.URL.Query()[v1.ExecCommandParam],
			Tty: opts.TTY, Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
		})
		if err != nil {
			return nil, opts, fmt.Errorf("exec in pod %s: %w", klog.KObj(pod), err)
		}
		raw = r.Url
	case "attach":
		id, err := s.runningContainer(ctx, pod, req.PathParameter("containerName"))
		if err != nil {
			return nil, opts, err
		}
		r, err := s.deps.Runtime.Attach(ctx, &runtimeapi.AttachRequest{
			ContainerId: id, Tty: opts.TTY, Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
		})
		if err != nil {
			return nil, opts, fmt.Errorf("attach in pod %s: %w", klog.KObj(pod), err)
		}
		raw = r.Url
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, opts, fmt.Errorf("runtime returned the stream URL %q: %w", raw, err)
	}
	if u.Host == "" {
		return nil, opts, fmt.Errorf("runtime returned the stream URL %q: no host", raw)
	}
	return u, opts, nil
}

// runningContainer returns the id of the newest container of that name,
// which must be in the pod spec.
func (s *Server) runningContainer(ctx context.Context, pod *v1.Pod, name string) (string, error) {
	if !hasContainer(pod, name) {
		return "", fmt.Errorf("container %q in pod %s: %w", name, klog.KObj(pod), errNotFound)
	}
	cs, err := s.containersByName(ctx, pod.UID, name)
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return c.Id, nil
		}
	}
	return "", fmt.Errorf("container %q in pod %s is not running: %w", name, klog.KObj(pod), errNotFound)
}

// sandbox returns the pod's ready sandbox.
func (s *Server) sandbox(ctx context.Context, pod *v1.Pod) (string, error) {
	f := cri.ManagedSandboxFilter(pod.UID)
	f.State = &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
	sbs, err := s.deps.Runtime.ListPodSandbox(ctx, f)
	if err != nil {
		return "", fmt.Errorf("list sandboxes of pod %s: %w", klog.KObj(pod), err)
	}
	var newest *runtimeapi.PodSandbox
	for _, sb := range sbs {
		if sb.GetMetadata().GetUid() == string(pod.UID) && (newest == nil || sb.CreatedAt > newest.CreatedAt) {
			newest = sb
		}
	}
	if newest == nil {
		return "", fmt.Errorf("sandbox of pod %s: %w", klog.KObj(pod), errNotFound)
	}
	return newest.Id, nil
}

// run executes cmd (split on spaces) and returns stdout then stderr.
func (s *Server) run(req *restful.Request, resp *restful.Response) {
	ctx := req.Request.Context()
	logger := klog.FromContext(ctx)
	pod, err := s.podByName(req.PathParameter("podNamespace"), req.PathParameter("podID"), types.UID(req.PathParameter("uid")))
	if err != nil {
		writeError(logger, resp, err)
		return
	}
	id, err := s.runningContainer(ctx, pod, req.PathParameter("containerName"))
	if err != nil {
		writeError(logger, resp, err)
		return
	}
	cmd := strings.Split(req.QueryParameter("cmd"), " ")
	stdout, stderr, err := s.deps.Runtime.ExecSync(ctx, id, cmd, runTimeout)
	if err != nil {
		writeError(logger, resp, fmt.Errorf("run in pod %s: %w", klog.KObj(pod), err))
		return
	}
	resp.Header().Set("Content-Type", "application/json")
	resp.WriteHeader(http.StatusOK)
	if _, err := resp.Write(append(stdout, stderr...)); err != nil {
		logger.V(4).Info("Writing response failed", "err", err)
	}
}

// responder reports proxy errors.
type responder struct{ logger klog.Logger }

func (r *responder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	r.logger.Error(err, "Proxying the stream failed")
	http.Error(w, err.Error(), http.StatusInternalServerError)
}
