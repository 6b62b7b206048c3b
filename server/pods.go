package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	"github.com/emicklei/go-restful/v3"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cri"
)

func (s *Server) addHealthz(c *restful.Container) {
	ws := new(restful.WebService).Path("/healthz")
	ws.Route(ws.GET("").To(func(_ *restful.Request, resp *restful.Response) {
		resp.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = resp.Write([]byte("ok"))
	}))
	c.Add(ws)
}

func (s *Server) addPods(c *restful.Container) {
	ws := new(restful.WebService).Path("/pods").Produces(restful.MIME_JSON)
	ws.Route(ws.GET("").To(func(req *restful.Request, resp *restful.Response) {
		list := &v1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
		for _, p := range s.deps.NodePods() {
			list.Items = append(list.Items, *p)
		}
		writeJSON(klog.FromContext(req.Request.Context()), resp, list)
	}))
	c.Add(ws)
}

func (s *Server) addRunningPods(c *restful.Container) {
	ws := new(restful.WebService).Path("/runningpods/").Produces(restful.MIME_JSON)
	ws.Route(ws.GET("").To(func(req *restful.Request, resp *restful.Response) {
		logger := klog.FromContext(req.Request.Context())
		list, err := s.runningPods(req)
		if err != nil {
			writeError(logger, resp, err)
			return
		}
		writeJSON(logger, resp, list)
	}))
	c.Add(ws)
}

// runningPods lists the agent's ready sandboxes with their running
// containers, as the runtime sees them.
func (s *Server) runningPods(req *restful.Request) (*v1.PodList, error) {
	ctx := req.Request.Context()
	sf := cri.ManagedSandboxFilter("")
	sf.State = &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}
	sandboxes, err := s.deps.Runtime.ListPodSandbox(ctx, sf)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	cf := cri.ManagedContainerFilter("")
	cf.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	containers, err := s.deps.Runtime.ListContainers(ctx, cf)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	byUID := map[types.UID]*v1.Pod{}
	list := &v1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	for _, sb := range sandboxes {
		md := sb.GetMetadata()
		uid := types.UID(md.GetUid())
		if _, ok := byUID[uid]; ok {
			continue
		}
		byUID[uid] = &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: md.GetName(), Namespace: md.GetNamespace(), UID: uid}}
	}
	for _, c := range containers {
		p := byUID[cri.PodUID(c.Labels)]
		if p == nil {
			continue
		}
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: c.GetMetadata().GetName(), Image: c.GetImage().GetImage()})
	}
	for _, p := range byUID {
		list.Items = append(list.Items, *p)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].UID < list.Items[j].UID })
	return list, nil
}

func (s *Server) addConfigz(c *restful.Container) {
	ws := new(restful.WebService).Path("/configz").Produces(restful.MIME_JSON)
	ws.Route(ws.GET("").To(func(req *restful.Request, resp *restful.Response) {
		writeJSON(klog.FromContext(req.Request.Context()), resp, map[string]any{"kubeletconfig": s.cfg.KubeletConfig})
	}))
	c.Add(ws)
}

// writeJSON encodes v with status 200, logging a failed write.
func writeJSON(logger klog.Logger, w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(logger, w, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(data); err != nil {
		logger.V(4).Info("Writing response failed", "err", err)
	}
}
