package hugepages

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// SysfsDir is where the kernel lists its huge page pools.
const SysfsDir = "/sys/kernel/mm/hugepages"

// Pool is the huge pages of one page size the machine has.
type Pool struct {
	// PageSize is the size of a page in bytes.
	PageSize int64
	// Pages is how many pages the kernel keeps (nr_hugepages).
	Pages int64
}

// Bytes is the pool's size, the node's capacity of its resource.
func (p Pool) Bytes() int64 { return p.PageSize * p.Pages }

// Read returns the pools listed in dir (SysfsDir; a fake one in tests), by
// page size: one "hugepages-<n>kB" directory per page size the kernel
// supports, with its nr_hugepages, as cAdvisor's GetHugePagesInfo. A
// missing dir (a kernel without hugetlbfs) has no pools. Other entries are
// ignored; a pool that does not read is an error, as the kubelet fails to
// start without its machine info.
func Read(dir string) ([]Pool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read huge page pools: %w", err)
	}
	var pools []Pool
	for _, e := range entries {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		kb, ok = strings.CutSuffix(kb, "kB")
		size, err := strconv.ParseInt(kb, 10, 64)
		if !ok || err != nil || size <= 0 || size > 1<<40 {
			return nil, fmt.Errorf("huge page pool %s: not hugepages-<size>kB", filepath.Join(dir, e.Name()))
		}
		nrFile := filepath.Join(dir, e.Name(), "nr_hugepages")
		data, err := os.ReadFile(nrFile)
		if err != nil {
			return nil, fmt.Errorf("huge page pool: %w", err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("huge page pool: %s holds %q, not a count", nrFile, strings.TrimSpace(string(data)))
		}
		pools = append(pools, Pool{PageSize: size * 1024, Pages: n})
	}
	slices.SortFunc(pools, func(a, b Pool) int { return cmp.Compare(a.PageSize, b.PageSize) })
	return pools, nil
}

// PageSizes are the page sizes of pools.
func PageSizes(pools []Pool) []int64 {
	out := make([]int64, 0, len(pools))
	for _, p := range pools {
		out = append(out, p.PageSize)
	}
	return out
}

// ResourceName is the resource of a page size: hugepages-2Mi for 2 MiB
// (the API's HugePageResourceName).
func ResourceName(pageSize int64) v1.ResourceName {
	return v1.ResourceName(v1.ResourceHugePagesPrefix + resource.NewQuantity(pageSize, resource.BinarySI).String())
}

// IsResourceName reports whether name is a hugepages-<size> resource.
func IsResourceName(name v1.ResourceName) bool {
	return strings.HasPrefix(string(name), v1.ResourceHugePagesPrefix)
}

// PageSizeOf is the page size in bytes of a hugepages-<size> resource;
// false for another resource or a size that does not parse (the
// apiserver lets none through).
func PageSizeOf(name v1.ResourceName) (int64, bool) {
	s, ok := strings.CutPrefix(string(name), v1.ResourceHugePagesPrefix)
	if !ok {
		return 0, false
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() <= 0 {
		return 0, false
	}
	return q.Value(), true
}

// Limits are the huge pages of a resource list by page size, in bytes
// (the kubelet's HugePageLimits); empty when it has none.
func Limits(rl v1.ResourceList) map[int64]int64 {
	out := map[int64]int64{}
	for name, q := range rl {
		if size, ok := PageSizeOf(name); ok {
			out[size] += q.Value()
		}
	}
	return out
}

// UnitSize is a page size as CRI and the hugetlb cgroup files name it:
// 2MB for 2 MiB, 1GB for 1 GiB, 64KB for 64 KiB (the kubelet's
// HugePageUnitSizeFromByteSize, runc's unit list).
func UnitSize(pageSize int64) string {
	units := []string{"B", "KB", "MB", "GB", "TB", "PB"}
	i := 0
	for pageSize%1024 == 0 && pageSize > 0 && i < len(units)-1 {
		pageSize /= 1024
		i++
	}
	return strconv.FormatInt(pageSize, 10) + units[i]
}

// IsMedium reports whether an emptyDir medium is HugePages or
// HugePages-<size>.
func IsMedium(medium v1.StorageMedium) bool {
	return medium == v1.StorageMediumHugePages || strings.HasPrefix(string(medium), string(v1.StorageMediumHugePagesPrefix))
}

// MediumPageSize is the page size an emptyDir medium names: 0 for
// HugePages (any), the size of HugePages-<size>; an error for a size that
// does not parse.
func MediumPageSize(medium v1.StorageMedium) (int64, error) {
	if medium == v1.StorageMediumHugePages {
		return 0, nil
	}
	s, ok := strings.CutPrefix(string(medium), string(v1.StorageMediumHugePagesPrefix))
	if !ok {
		return 0, fmt.Errorf("medium %q is not a huge page medium", medium)
	}
	q, err := resource.ParseQuantity(s)
	if err != nil || q.Sign() <= 0 {
		return 0, fmt.Errorf("medium %q: %q is not a page size", medium, s)
	}
	return q.Value(), nil
}
