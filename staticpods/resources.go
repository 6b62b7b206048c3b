package staticpods

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/nodeagent/nodeagent/hugepages"
)

// The resources of a manifest's pod, as the apiserver would have them: a
// static pod's mirror carries the same spec, defaulted and validated by
// the apiserver, and its status (qosClass above all, which is immutable)
// must agree with it. The kubelet decodes manifests with the API's
// defaulting and validation (config/common.go tryDecodeSinglePod); these
// are the parts of them about resources.

// defaultResources sets the resource defaults of the API's SetDefaults_Pod
// (pkg/apis/core/v1/defaults.go): a container's requests default to its
// limits; then, the pod-level resources being partly set, pod-level
// hugepages limits default to the containers' aggregate limits
// (defaultHugePagePodLimits) and, with pod-level limits, pod-level
// requests to the containers' aggregate requests for cpu and memory,
// else to the pod-level limits (defaultPodRequests). A pod with
// spec.resources.limits only is thus Guaranteed, as the apiserver classes
// its mirror.
func defaultResources(pod *v1.Pod) {
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			r := &cs[i].Resources
			for name, q := range r.Limits {
				if _, ok := r.Requests[name]; !ok {
					if r.Requests == nil {
						r.Requests = v1.ResourceList{}
					}
					r.Requests[name] = q.DeepCopy()
				}
			}
		}
	}
	// After the containers' defaults: the pod's count them.
	r := pod.Spec.Resources
	if r == nil || len(r.Limits) == 0 && len(r.Requests) == 0 {
		return
	}
	set := func(list *v1.ResourceList, name v1.ResourceName, q resource.Quantity) {
		if _, ok := (*list)[name]; ok {
			return
		}
		if *list == nil {
			*list = v1.ResourceList{}
		}
		(*list)[name] = q.DeepCopy()
	}
	for name, q := range resourcehelper.AggregateContainerLimits(pod, resourcehelper.PodResourcesOptions{}) {
		// Not when the pod requests the size: its limit is then
		// validated against the request, not made up.
		if _, requested := r.Requests[name]; hugepages.IsResourceName(name) && !requested {
			set(&r.Limits, name, q)
		}
	}
	if len(r.Limits) == 0 {
		return
	}
	for name, q := range resourcehelper.AggregateContainerRequests(pod, resourcehelper.PodResourcesOptions{}) {
		// cpu and memory: hugepages may not be overcommitted, their
		// request is their limit.
		if name == v1.ResourceCPU || name == v1.ResourceMemory {
			set(&r.Requests, name, q)
		}
	}
	for name, q := range r.Limits {
		if resourcehelper.IsSupportedPodLevelResource(name) {
			set(&r.Requests, name, q)
		}
	}
}

// ValidateResources returns why the pod-level resources of a manifest's
// pod are invalid, as the apiserver's validatePodResourceRequirements and
// validatePodResourceConsistency (pkg/apis/core/validation) would refuse
// them: a pod-level request above its limit or below the containers'
// aggregate requests, a hugepages limit below the containers' aggregate
// limits, a container limit above the pod's; nil when they are valid or
// unset. Only static pods need it: the apiserver validated the others.
func ValidateResources(pod *v1.Pod) error {
	r := pod.Spec.Resources
	if r == nil {
		return nil
	}
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(r.Requests)) {
		req := r.Requests[name]
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, fmt.Sprintf("spec.resources.requests[%s] %s must be less than or equal to the %s limit of %s", name, req.String(), name, lim.String()))
		}
	}
	aggregate := resourcehelper.AggregateContainerRequests(pod, resourcehelper.PodResourcesOptions{})
	for _, name := range slices.Sorted(maps.Keys(aggregate)) {
		q := aggregate[name]
		if req, ok := r.Requests[name]; ok && q.Cmp(req) > 0 {
			errs = append(errs, fmt.Sprintf("spec.resources.requests[%s] %s must be greater than or equal to the containers' aggregate requests of %s", name, req.String(), q.String()))
		}
	}
	aggregate = resourcehelper.AggregateContainerLimits(pod, resourcehelper.PodResourcesOptions{})
	for _, name := range slices.Sorted(maps.Keys(aggregate)) {
		q := aggregate[name]
		if lim, ok := r.Limits[name]; ok && hugepages.IsResourceName(name) && q.Cmp(lim) > 0 {
			errs = append(errs, fmt.Sprintf("spec.resources.limits[%s] %s must be greater than or equal to the containers' aggregate limits of %s", name, lim.String(), q.String()))
		}
	}
	// Regular containers only, as the apiserver checks.
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for _, name := range slices.Sorted(maps.Keys(c.Resources.Limits)) {
			q := c.Resources.Limits[name]
			if lim, ok := r.Limits[name]; ok && q.Cmp(lim) > 0 {
				errs = append(errs, fmt.Sprintf("spec.containers[%d].resources.limits[%s] %s must be less than or equal to the pod limit of %s", i, name, q.String(), lim.String()))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}
