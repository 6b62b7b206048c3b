// Package hugepages is the one home of the machine's huge pages: the pools
// the kernel has (one per page size, /sys/kernel/mm/hugepages) and the
// names the API, CRI and the cgroup files give a page size.
//
// The node's capacity has hugepages-<size> for every page size the machine
// supports, worth nr_hugepages × size (0 when none are reserved), as the
// kubelet's cadvisor.CapacityFromMachineInfo. As the kubelet, which reads
// its machine info once at start (GetCachedMachineInfo "assumes that the
// machine info can't change without a reboot"), the agent reads the pools
// once: a change of nr_hugepages at run time shows in the node's capacity,
// the kubepods cgroup and admission only after the agent restarts.
//
// Names of a page size of 2 MiB:
//
//	hugepages-2Mi        the resource (ResourceName), as requests and capacity say it
//	HugePages-2Mi        an emptyDir medium (MediumPageSize)
//	2MB                  CRI's HugepageLimit.PageSize and the cgroup files,
//	                     hugetlb.2MB.limit_in_bytes (v1), hugetlb.2MB.max (v2) (UnitSize)
//	hugepages-2048kB     the sysfs directory (Read)
package hugepages
