// Package volumes prepares on the host the volumes a pod may use, so the
// agent can bind-mount them into its containers through CRI.
//
// Every volume of a pod lives in
//
//	<rootDir>/pods/<podUID>/volumes/<plugin>/<volumeName>
//
// where plugin is the kubelet's name for the volume plugin
// (kubernetes.io~empty-dir, kubernetes.io~configmap, kubernetes.io~secret,
// kubernetes.io~downward-api, kubernetes.io~projected), so the layout is
// familiar to anyone who knows the kubelet.
//
// emptyDir volumes are plain directories (mode 0777); with medium Memory a
// tmpfs is mounted on them when the agent runs as root. With medium
// HugePages or HugePages-<size> a hugetlbfs is, with the page size the
// pod's containers request (HugePages: the one size they request; several
// sizes, or none of the medium's, is an error, as the kubelet's); without
// root such a volume fails rather than be a plain directory. As the
// kubelet's, the hugetlbfs has no mode option: its root is 0755, root's,
// which the pod's fsGroup, when it has one, gets to write (below), so a
// pod that is not root uses its huge pages with an fsGroup. configMap, secret,
// downwardAPI and projected volumes are computed into a payload (path ->
// content and mode) and written the way the kubelet's AtomicWriter writes
// them: the files go to a fresh timestamped directory "..2006_01_02_...",
// the "..data" symlink is swapped to it with a rename, and every top-level
// entry is a symlink "name -> ..data/name". A container therefore always
// sees one complete version, and sees updates without a remount. Payload
// paths are validated so nothing is written outside the volume directory.
//
// Everything inside a volume directory may have been written by a
// container racing the agent. The writer trusts nothing it finds there
// (atomic.go): "..data" counts only when it links to a version directory
// inside the volume, versions are compared through descriptors opened
// without following links, and anything else is removed as it is, never
// followed. The agent mounts these volumes read-only into containers
// anyway. secret and projected volumes are tmpfs mounts, so their values
// never reach the disk; memory-backed volumes are sized as the kubelet
// sizes them (memoryVolumeSize). With the pod's fsGroup, the agent-written
// files and directories belong to that group (setgid directories,
// group-readable files) and so does the root of an emptyDir (group
// read, write and search, setgid), whatever its medium.
//
// SubPath makes a subPath safe as the kubelet's subpath_linux.go: the path
// is opened one component at a time with O_NOFOLLOW and that file is
// bind-mounted through /proc/<pid>/fd on
// <pod dir>/volume-subpaths/<volume>/<container>/<index>, which the runtime
// gets. Teardown unmounts everything below the pod directory (read from
// /proc/self/mountinfo) and removes nothing while something stays mounted.
//
// Each ConfigMap and Secret a volume or a container's environment uses is
// watched alone (watch.go; the environment's through Manager.ConfigMap and
// Manager.Secret): a change marks the pods using it stale and wakes them
// through Wake, and their next sync calls Setup again (Stale), which reads
// the watched copy. A pod that found one missing is woken when it appears.
// An immutable one's watch stops once it brought it; its copy stays.
//
// Manager.Setup is idempotent: calling it again re-reads ConfigMaps and
// Secrets, renews service account tokens that are due, and rewrites a volume
// only when its payload changed. Service account tokens are requested with
// the TokenRequest API, bound to the pod, cached, and renewed once older
// than 80% of their TTL or 24 hours; Manager.NextRefresh tells the caller
// when to call Setup again. Manager.Teardown removes everything of a pod.
//
// hostPath volumes are the host's own path, checked (or created) as their
// type says: Directory, File, Socket, CharDevice and BlockDevice must exist
// as such, DirectoryOrCreate makes a 0755 directory, FileOrCreate an empty
// 0644 file, no type checks nothing. Teardown never touches them.
//
// image volumes have nothing on the host: Setup reports them with an
// empty path, and the agent hands the pulled image to the runtime, which
// mounts it (package podsync, imagevolumes.go).
//
// Any other volume type (persistentVolumeClaim, csi, nfs, ...) makes
// Setup fail with an error matching ErrUnsupported that names the volume and
// its type. A missing ConfigMap or Secret that is not optional fails with an
// error wrapping podenv.ErrConfig and the API's NotFound error.
package volumes
