package cni

import (
	"fmt"
	"math"
	"net"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodeagent/nodeagent/configs"
)

// The pod annotations that ask for traffic shaping, in bits per second.
const (
	IngressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth"
	EgressBandwidthAnnotation  = "kubernetes.io/egress-bandwidth"
)

// Capability names of the CNI conventions.
const (
	capPortMappings = "portMappings"
	capBandwidth    = "bandwidth"
	capIPRanges     = "ipRanges"
)

// The bounds the kubelet accepted for a bandwidth annotation.
var (
	minBandwidth = resource.MustParse("1k")
	maxBandwidth = resource.MustParse("1P")
)

// portMappingEntry is one entry of the portMappings capability.
type portMappingEntry struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// bandwidthEntry is the bandwidth capability: rates in bits per second,
// bursts in bits.
type bandwidthEntry struct {
	IngressRate  int64 `json:"ingressRate,omitempty"`
	IngressBurst int64 `json:"ingressBurst,omitempty"`
	EgressRate   int64 `json:"egressRate,omitempty"`
	EgressBurst  int64 `json:"egressBurst,omitempty"`
}

// ipRange is one range of the ipRanges capability.
type ipRange struct {
	Subnet string `json:"subnet"`
}

// capabilityArgs builds the runtimeConfig the plugins that declare the
// capabilities receive. Only a bad bandwidth annotation is an error.
func capabilityArgs(pn PodNetwork) (map[string]any, error) {
	args := map[string]any{}
	if pm := portMappingEntries(pn.PortMappings); len(pm) > 0 {
		args[capPortMappings] = pm
	}
	bw, err := bandwidth(pn.IngressBandwidth, pn.EgressBandwidth)
	if err != nil {
		return nil, err
	}
	if bw != nil {
		args[capBandwidth] = bw
	}
	if r := ipRanges(pn.PodCIDRs); len(r) > 0 {
		args[capIPRanges] = r
	}
	return args, nil
}

// portMappingEntries keeps the mappings with a host port, as the kubelet did,
// with the protocol in lower case (tcp when empty).
func portMappingEntries(pms []PortMapping) []portMappingEntry {
	var out []portMappingEntry
	for _, pm := range pms {
		if pm.HostPort <= 0 {
			continue
		}
		proto := strings.ToLower(pm.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		out = append(out, portMappingEntry{HostPort: pm.HostPort, ContainerPort: pm.ContainerPort, Protocol: proto, HostIP: pm.HostIP})
	}
	return out
}

// bandwidth parses the annotation values; nil when neither is set. The burst
// is math.MaxInt32 bits, as the kubelet set it: in practice no burst limit.
func bandwidth(ingress, egress string) (*bandwidthEntry, error) {
	in, err := parseBandwidth(IngressBandwidthAnnotation, ingress)
	if err != nil {
		return nil, err
	}
	out, err := parseBandwidth(EgressBandwidthAnnotation, egress)
	if err != nil {
		return nil, err
	}
	if in == 0 && out == 0 {
		return nil, nil
	}
	bw := &bandwidthEntry{}
	if in > 0 {
		bw.IngressRate, bw.IngressBurst = in, math.MaxInt32
	}
	if out > 0 {
		bw.EgressRate, bw.EgressBurst = out, math.MaxInt32
	}
	return bw, nil
}

// parseBandwidth returns the bits per second of an annotation value, 0 when
// it is empty.
func parseBandwidth(annotation, value string) (int64, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, nil
	}
	q, err := configs.ParseQuantity(value)
	if err != nil {
		return 0, fmt.Errorf("annotation %s=%q: %w", annotation, value, err)
	}
	if q.Cmp(minBandwidth) < 0 {
		return 0, fmt.Errorf("annotation %s=%q: unreasonably small (< 1kbit/s)", annotation, value)
	}
	if q.Cmp(maxBandwidth) > 0 {
		return 0, fmt.Errorf("annotation %s=%q: unreasonably large (> 1Pbit/s)", annotation, value)
	}
	return q.Value(), nil
}

// ValidateBandwidth checks the bandwidth annotation values as Setup will, for
// callers that want to reject a pod before creating its sandbox.
func ValidateBandwidth(ingress, egress string) error {
	_, err := bandwidth(ingress, egress)
	return err
}

// ipRanges gives host-local one range set per pod CIDR, so that a dual-stack
// node allocates one address of each family. Malformed CIDRs are left out.
func ipRanges(cidrs []string) [][]ipRange {
	var out [][]ipRange
	for _, c := range cidrs {
		if _, _, err := net.ParseCIDR(strings.TrimSpace(c)); err != nil {
			continue
		}
		out = append(out, []ipRange{{Subnet: strings.TrimSpace(c)}})
	}
	return out
}
