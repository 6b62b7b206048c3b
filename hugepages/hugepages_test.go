package hugepages

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// fakeSysfs writes pools (directory name -> nr_hugepages) in a temporary
// directory laid out as /sys/kernel/mm/hugepages.
func fakeSysfs(t *testing.T, pools map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, nr := range pools {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if nr != "" {
			if err := os.WriteFile(filepath.Join(dir, name, "nr_hugepages"), []byte(nr), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pools   map[string]string
		want    []Pool
		wantErr bool
	}{
		{name: "none reserved", pools: map[string]string{"hugepages-2048kB": "0\n"}, want: []Pool{{PageSize: 2 << 20}}},
		{name: "two sizes by size", pools: map[string]string{"hugepages-1048576kB": "2\n", "hugepages-2048kB": "8\n"},
			want: []Pool{{PageSize: 2 << 20, Pages: 8}, {PageSize: 1 << 30, Pages: 2}}},
		{name: "other entries ignored", pools: map[string]string{"hugepages-64kB": "3", "README": ""}, want: []Pool{{PageSize: 64 << 10, Pages: 3}}},
		{name: "no nr_hugepages", pools: map[string]string{"hugepages-2048kB": ""}, wantErr: true},
		{name: "bad count", pools: map[string]string{"hugepages-2048kB": "lots"}, wantErr: true},
		{name: "bad size", pools: map[string]string{"hugepages-2MB": "1"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(fakeSysfs(t, tc.pools))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("pools = %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("no hugetlbfs", func(t *testing.T) {
		got, err := Read(filepath.Join(t.TempDir(), "missing"))
		if err != nil || len(got) != 0 {
			t.Errorf("Read of a missing dir = %v, %v; want no pools", got, err)
		}
	})
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		size     int64
		resource v1.ResourceName
		unit     string
	}{
		{2 << 20, "hugepages-2Mi", "2MB"},
		{1 << 30, "hugepages-1Gi", "1GB"},
		{64 << 10, "hugepages-64Ki", "64KB"},
		{32 << 20, "hugepages-32Mi", "32MB"},
		{16 << 30, "hugepages-16Gi", "16GB"},
	} {
		if got := ResourceName(tc.size); got != tc.resource {
			t.Errorf("ResourceName(%d) = %s, want %s", tc.size, got, tc.resource)
		}
		if got, ok := PageSizeOf(tc.resource); !ok || got != tc.size {
			t.Errorf("PageSizeOf(%s) = %d, %v", tc.resource, got, ok)
		}
		if got := UnitSize(tc.size); got != tc.unit {
			t.Errorf("UnitSize(%d) = %s, want %s", tc.size, got, tc.unit)
		}
	}
	for _, name := range []v1.ResourceName{"memory", "hugepages-", "hugepages-x", "hugepages--2Mi"} {
		if _, ok := PageSizeOf(name); ok {
			t.Errorf("PageSizeOf(%s) ok", name)
		}
	}
}

func TestLimits(t *testing.T) {
	got := Limits(v1.ResourceList{
		v1.ResourceMemory: resource.MustParse("1Gi"),
		"hugepages-2Mi":   resource.MustParse("4Mi"),
		"hugepages-1Gi":   resource.MustParse("2Gi"),
	})
	want := map[int64]int64{2 << 20: 4 << 20, 1 << 30: 2 << 30}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Limits = %v, want %v", got, want)
	}
}

func TestMediumPageSize(t *testing.T) {
	for _, tc := range []struct {
		medium  v1.StorageMedium
		want    int64
		wantErr bool
	}{
		{medium: "HugePages", want: 0},
		{medium: "HugePages-2Mi", want: 2 << 20},
		{medium: "HugePages-1Gi", want: 1 << 30},
		{medium: "HugePages-big", wantErr: true},
		{medium: "Memory", wantErr: true},
	} {
		got, err := MediumPageSize(tc.medium)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("MediumPageSize(%s) = %d, %v", tc.medium, got, err)
		}
		if IsMedium(tc.medium) == (tc.medium == "Memory") {
			t.Errorf("IsMedium(%s) wrong", tc.medium)
		}
	}
}
