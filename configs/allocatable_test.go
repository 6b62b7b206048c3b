package configs

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestReservedResources(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      map[string]string
		want    v1.ResourceList
		wantErr string
	}{
		{name: "none"},
		{name: "all four", in: map[string]string{"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "10Gi", "pid": "1k"},
			want: v1.ResourceList{
				v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("1Gi"),
				v1.ResourceEphemeralStorage: resource.MustParse("10Gi"), pidResource: resource.MustParse("1000"),
			}},
		{name: "zero", in: map[string]string{"cpu": "0"}, want: v1.ResourceList{v1.ResourceCPU: resource.MustParse("0")}},
		{name: "unknown", in: map[string]string{"cpu": "1", "pods": "10"}, wantErr: `"pods": cannot reserve this resource`},
		{name: "negative", in: map[string]string{"memory": "-1Gi"}, wantErr: `"memory": must not be negative, got "-1Gi"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReservedResources(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q...", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for name, q := range tc.want {
				if g, ok := got[name]; !ok || g.Cmp(q) != 0 {
					t.Errorf("%s = %s, want %s", name, g.String(), q.String())
				}
			}
		})
	}
}
