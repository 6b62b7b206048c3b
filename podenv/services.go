package podenv

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// masterServiceName is the service whose variables every pod gets.
const masterServiceName = "kubernetes"

// serviceEnv returns the service environment variables of a pod in
// namespace ns, ordered by service name.
func (r *Resolver) serviceEnv(ctx context.Context, ns string, enableServiceLinks bool) ([]EnvVar, error) {
	masterNS := r.MasterServiceNamespace
	if masterNS == "" {
		masterNS = "default"
	}
	byName := map[string]*v1.Service{}
	if enableServiceLinks {
		svcs, err := r.listServices(ctx, ns)
		if err != nil {
			return nil, err
		}
		for _, s := range svcs {
			if hasClusterIP(s) {
				byName[s.Name] = s
			}
		}
	}
	if _, ok := byName[masterServiceName]; !ok {
		svcs := []*v1.Service(nil)
		if !enableServiceLinks || ns != masterNS {
			var err error
			if svcs, err = r.listServices(ctx, masterNS); err != nil {
				return nil, err
			}
		}
		for _, s := range svcs {
			if s.Name == masterServiceName && hasClusterIP(s) {
				byName[s.Name] = s
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var env []EnvVar
	for _, n := range names {
		env = append(env, ServiceEnv(byName[n])...)
	}
	return env, nil
}

func (r *Resolver) listServices(ctx context.Context, ns string) ([]*v1.Service, error) {
	if r.ServiceLister != nil {
		svcs, err := r.ServiceLister(ns)
		if err != nil {
			return nil, fmt.Errorf("list services of namespace %q: %w", ns, err)
		}
		return svcs, nil
	}
	if r.Client == nil {
		return nil, nil
	}
	list, err := r.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services of namespace %q: %w", ns, err)
	}
	svcs := make([]*v1.Service, 0, len(list.Items))
	for i := range list.Items {
		svcs = append(svcs, &list.Items[i])
	}
	return svcs, nil
}

func hasClusterIP(s *v1.Service) bool {
	return s.Spec.ClusterIP != "" && s.Spec.ClusterIP != v1.ClusterIPNone && len(s.Spec.Ports) > 0
}

// ServiceEnv returns the environment variables the kubelet injects for one
// service: NAME_SERVICE_HOST, NAME_SERVICE_PORT, NAME_SERVICE_PORT_<PORTNAME>
// and the docker-links style NAME_PORT, NAME_PORT_<port>_<PROTO>[_PROTO,
// _PORT, _ADDR]. A service without a cluster IP or ports yields nothing.
func ServiceEnv(s *v1.Service) []EnvVar {
	if !hasClusterIP(s) {
		return nil
	}
	prefix := envName(s.Name)
	ip := s.Spec.ClusterIP
	env := []EnvVar{
		{Name: prefix + "_SERVICE_HOST", Value: ip},
		{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(s.Spec.Ports[0].Port))},
	}
	for _, p := range s.Spec.Ports {
		if p.Name != "" {
			env = append(env, EnvVar{Name: prefix + "_SERVICE_PORT_" + envName(p.Name), Value: strconv.Itoa(int(p.Port))})
		}
	}
	for i, p := range s.Spec.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(v1.ProtocolTCP)
		}
		port := strconv.Itoa(int(p.Port))
		url := strings.ToLower(proto) + "://" + net.JoinHostPort(ip, port)
		if i == 0 {
			env = append(env, EnvVar{Name: prefix + "_PORT", Value: url})
		}
		pp := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		env = append(env,
			EnvVar{Name: pp, Value: url},
			EnvVar{Name: pp + "_PROTO", Value: strings.ToLower(proto)},
			EnvVar{Name: pp + "_PORT", Value: port},
			EnvVar{Name: pp + "_ADDR", Value: ip},
		)
	}
	return env
}

func envName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}
