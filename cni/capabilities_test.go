package cni

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestBandwidth(t *testing.T) {
	tests := []struct {
		name            string
		ingress, egress string
		want            *bandwidthEntry
		wantErr         string
	}{
		{name: "none"},
		{name: "ingress only", ingress: "10M", want: &bandwidthEntry{IngressRate: 10_000_000, IngressBurst: math.MaxInt32}},
		{name: "egress binary suffix", egress: "1Mi", want: &bandwidthEntry{EgressRate: 1 << 20, EgressBurst: math.MaxInt32}},
		{name: "both", ingress: "1k", egress: " 1G ", want: &bandwidthEntry{IngressRate: 1000, IngressBurst: math.MaxInt32, EgressRate: 1_000_000_000, EgressBurst: math.MaxInt32}},
		{name: "not a quantity", ingress: "fast", wantErr: IngressBandwidthAnnotation + `="fast"`},
		{name: "too small", egress: "999", wantErr: EgressBandwidthAnnotation + `="999": unreasonably small`},
		{name: "too large", ingress: "2P", wantErr: IngressBandwidthAnnotation + `="2P": unreasonably large`},
		{name: "negative", egress: "-1M", wantErr: EgressBandwidthAnnotation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bandwidth(tc.ingress, tc.egress)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				if ValidateBandwidth(tc.ingress, tc.egress) == nil {
					t.Error("ValidateBandwidth accepted it")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("bandwidth = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCapabilityArgs(t *testing.T) {
	args, err := capabilityArgs(PodNetwork{
		PortMappings: []PortMapping{
			{HostPort: 80, ContainerPort: 8080},
			{HostPort: 53, ContainerPort: 53, Protocol: "UDP", HostIP: "10.0.0.1"},
			{HostPort: 0, ContainerPort: 9000, Protocol: "TCP"},
			{HostPort: 9999, ContainerPort: 9999, Protocol: "SCTP"},
		},
		PodCIDRs: []string{"10.244.1.0/24", "bogus", "fd00::/64"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		capPortMappings: []portMappingEntry{
			{HostPort: 80, ContainerPort: 8080, Protocol: "tcp"},
			{HostPort: 53, ContainerPort: 53, Protocol: "udp", HostIP: "10.0.0.1"},
			{HostPort: 9999, ContainerPort: 9999, Protocol: "sctp"},
		},
		capIPRanges: [][]ipRange{{{Subnet: "10.244.1.0/24"}}, {{Subnet: "fd00::/64"}}},
	}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("capabilityArgs = %+v, want %+v", args, want)
	}
	if args, _ := capabilityArgs(PodNetwork{}); len(args) != 0 {
		t.Errorf("capabilityArgs of a plain pod = %v, want none", args)
	}
}

func FuzzParseBandwidth(f *testing.F) {
	for _, s := range []string{"", "1M", "10Gi", "1e3", "-5k", "999999P", "0.5M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseBandwidth(IngressBandwidthAnnotation, s)
		if err == nil && v != 0 && (v < 1000 || v > 1e15) {
			t.Errorf("parseBandwidth(%q) = %d, out of bounds", s, v)
		}
	})
}
