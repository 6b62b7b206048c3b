// Package imagegc removes unused container images, as the kubelet's image
// garbage collector (pkg/kubelet/images/image_gc_manager.go) does, under
// the KubeletConfiguration fields imageGCHighThresholdPercent,
// imageGCLowThresholdPercent, imageMinimumGCAge and imageMaximumGCAge.
//
// A pass (Manager.GarbageCollect) runs when Run starts and then every
// Period, the kubelet's ImageGCPeriod of 5 minutes. It lists the runtime's
// images (CRI ListImages) and all its containers, running or exited (CRI
// ListContainers without a filter, whoever created them): an image is in
// use while any container's image ID (or, from runtimes older than CRI
// v1.30, its image ref) names it, or while a container mounts it as an
// image volume (CRI ContainerStatus mounts, as the kubelet's
// handleImageVolumes: the listing does not tell them). The Manager remembers, in memory only,
// when it first saw each image and when it last saw it in use; images
// gone from the runtime are forgotten. The candidates for removal are the
// images not in use and not pinned (CRI Image.pinned; containerd pins its
// sandbox image), least recently used first, then first detected first.
//
// Then, as the kubelet:
//
//   - with imageMaximumGCAge set, once the Manager has run for longer than
//     that age, every candidate not seen in use for longer than it is
//     removed whatever the disk usage (an image never seen in use counts
//     as unused since forever);
//   - the image filesystem's capacity and available bytes (Config.ImageFs:
//     the mount point CRI ImageFsInfo reports, measured with statfs) give
//     the usage, 100 - available*100/capacity in whole percents. At or
//     above imageGCHighThresholdPercent, candidates first detected at
//     least imageMinimumGCAge ago are removed in order until
//     capacity*(100-imageGCLowThresholdPercent)/100 - available bytes
//     (the sum of the removed images' sizes) are freed. When the eligible
//     images do not add up to that, a Warning event FreeDiskSpaceFailed
//     is recorded on the Node with the kubelet's message, and the pass
//     fails;
//   - a capacity of 0 is a Warning event InvalidDiskCapacity and fails the
//     pass.
//
// A failed pass is logged; from the second failed pass in a row on, a
// Warning event ImageGCFailed with the error is recorded on the Node too
// (the kubelet does not record the first, taken for stats that are not
// ready yet). Each removal is logged ("Removing image to free bytes") and
// counted in kubelet_image_garbage_collected_total by reason (age, space).
//
// With imageGCHighThresholdPercent 100 and imageMaximumGCAge 0, Run does
// nothing, as the kubelet then starts no image garbage collection. With
// 100 and a maximum age, the threshold still applies: it is reached when
// less than 1% of the filesystem is available.
//
// Left out: the RuntimeClassInImageCriAPI feature gate (alpha, off:
// images are keyed by ID alone, and removed with the runtime handler they
// were listed with).
package imagegc
