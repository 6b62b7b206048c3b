package podsync

import (
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Nothing in a pod spec is silently ignored: every field of these types is
// either honoured (the value says where, or why the node has nothing to do)
// or refused at admission with UnsupportedPodSpec (unsupported()). A field
// that a new k8s.io/api adds fails TestPodSpecFieldsDecided until someone
// decides. securityContext fields are decided in security_test.go.
var honouredFields = map[string]string{
	"PodSpec.Volumes":                       "volumes.Manager",
	"PodSpec.InitContainers":                "syncContainers",
	"PodSpec.Containers":                    "syncContainers",
	"PodSpec.EphemeralContainers":           "syncEphemeral (ephemeral.go)",
	"PodSpec.RestartPolicy":                 "shouldRestart",
	"PodSpec.TerminationGracePeriodSeconds": "terminate.go",
	"PodSpec.ActiveDeadlineSeconds":         "deadline.go",
	"PodSpec.DNSPolicy":                     "dnsConfig",
	"PodSpec.NodeSelector":                  "generalFilter (nodeSelector, admission_filter.go), admitOS",
	"PodSpec.ServiceAccountName":            "the apiserver's: the token volume is in the spec",
	"PodSpec.DeprecatedServiceAccount":      "the apiserver's",
	"PodSpec.AutomountServiceAccountToken":  "the apiserver's: the token volume is in the spec",
	"PodSpec.NodeName":                      "the pod informer's field selector",
	"PodSpec.HostNetwork":                   "namespaceOptions, CNI skipped",
	"PodSpec.HostPID":                       "namespaceOptions",
	"PodSpec.HostIPC":                       "namespaceOptions, admitSysctls",
	"PodSpec.ShareProcessNamespace":         "namespaceOptions",
	"PodSpec.SecurityContext":               "security.go",
	"PodSpec.ImagePullSecrets":              "pullAuth",
	"PodSpec.Hostname":                      "podHostname",
	"PodSpec.Subdomain":                     "podHostname, writeHosts",
	"PodSpec.Affinity":                      "generalFilter (required node affinity, admission_filter.go)",
	"PodSpec.SchedulerName":                 "the scheduler's",
	"PodSpec.Tolerations":                   "generalFilter (NoExecute at admission); the taint manager's",
	"PodSpec.HostAliases":                   "writeHosts",
	"PodSpec.PriorityClassName":             "the apiserver's (it sets Priority)",
	"PodSpec.Priority":                      "the scheduler's (no node-pressure eviction yet to rank by it)",
	"PodSpec.DNSConfig":                     "dnsConfig",
	"PodSpec.ReadinessGates":                "status.go",
	"PodSpec.RuntimeClassName":              "runtimeHandler: the RuntimeClass's handler to RunPodSandbox (runtimeclass.go)",
	"PodSpec.EnableServiceLinks":            "podenv",
	"PodSpec.PreemptionPolicy":              "the scheduler's",
	"PodSpec.Overhead":                      "podRequests (admission)",
	"PodSpec.TopologySpreadConstraints":     "the scheduler's",
	"PodSpec.SetHostnameAsFQDN":             "kernelHostname",
	"PodSpec.OS":                            "admitOS",
	"PodSpec.SchedulingGates":               "the scheduler's",
	"PodSpec.SchedulingGroup":               "the scheduler's",
	"PodSpec.HostnameOverride":              "podHostname",
	"PodSpec.Resources":                     "pod-level resources: podcgroups.PodSettings (the pod's cgroup), podcgroups.QOSClass, linuxResources and oomScoreAdj (linux.go), podRequests (admission), eviction ranking, podenv.ResourceValue; names other than cpu, memory and hugepages-* and claims refused by unsupported()",

	"Container.Name":                     "CRI metadata",
	"Container.Image":                    "ensureImage",
	"Container.Command":                  "containerConfig",
	"Container.Args":                     "containerConfig",
	"Container.WorkingDir":               "containerConfig",
	"Container.Ports":                    "portMappings (hostPort), fitsHostPorts",
	"Container.EnvFrom":                  "podenv",
	"Container.Env":                      "podenv",
	"Container.Resources":                "containerLinux (hugepages: hugepageLimits), generalFilter, podcgroups (hugetlb), eviction (ephemeral-storage limits), resize.go (in-place resize)",
	"Container.ResizePolicy":             "resize.go: RestartContainer restarts the container on a resize",
	"Container.RestartPolicy":            "sidecars; refused on app containers (unsupported)",
	"Container.VolumeMounts":             "mounts",
	"Container.LivenessProbe":            "prober",
	"Container.ReadinessProbe":           "prober",
	"Container.StartupProbe":             "prober",
	"Container.Lifecycle":                "hooks.go",
	"Container.TerminationMessagePath":   "terminationFile",
	"Container.TerminationMessagePolicy": "termination.go",
	"Container.ImagePullPolicy":          "ensureImage",
	"Container.SecurityContext":          "security.go",
	"Container.Stdin":                    "containerConfig",
	"Container.StdinOnce":                "containerConfig",
	"Container.TTY":                      "containerConfig",

	"Probe.ProbeHandler":                  "prober",
	"Probe.InitialDelaySeconds":           "prober",
	"Probe.TimeoutSeconds":                "prober",
	"Probe.PeriodSeconds":                 "prober",
	"Probe.SuccessThreshold":              "prober",
	"Probe.FailureThreshold":              "prober",
	"Probe.TerminationGracePeriodSeconds": "probes.go (liveness and startup kills)",
	"ProbeHandler.Exec":                   "prober",
	"ProbeHandler.HTTPGet":                "prober",
	"ProbeHandler.TCPSocket":              "prober",
	"ProbeHandler.GRPC":                   "prober",
	"Lifecycle.PostStart":                 "hooks.go",
	"Lifecycle.PreStop":                   "hooks.go",
	"Lifecycle.StopSignal":                "containerConfig (CRI StopSignal)",
	"LifecycleHandler.Exec":               "hooks.go",
	"LifecycleHandler.HTTPGet":            "hooks.go",
	"LifecycleHandler.TCPSocket":          "hooks.go (refused by the API, as the kubelet)",
	"LifecycleHandler.Sleep":              "hooks.go",

	"VolumeSource.HostPath":    "volumes",
	"VolumeSource.EmptyDir":    "volumes (medium Memory: tmpfs, HugePages: hugetlbfs), eviction (sizeLimit)",
	"VolumeSource.Secret":      "volumes",
	"VolumeSource.DownwardAPI": "volumes",
	"VolumeSource.ConfigMap":   "volumes",
	"VolumeSource.Projected":   "volumes",
	"VolumeSource.Image":       "imageVolumes (imagevolumes.go): pulled before the containers that mount it, mounted read-only by the runtime (CRI Mount.Image)",

	"ImageVolumeSource.Reference":  "pullImageVolumes, imageVolumeSpec (UserSpecifiedImage)",
	"ImageVolumeSource.PullPolicy": "pullImageVolumes: pullImage with pullPolicy's default as for containers",

	"VolumeMount.Name":              "mounts",
	"VolumeMount.ReadOnly":          "mounts",
	"VolumeMount.RecursiveReadOnly": "recursiveReadOnly",
	"VolumeMount.MountPath":         "mounts",
	"VolumeMount.SubPath":           "volumes.Manager.SubPath",
	"VolumeMount.MountPropagation":  "mounts",
	"VolumeMount.SubPathExpr":       "expandSubPathExpr",

	"EnvVarSource.FieldRef":         "podenv",
	"EnvVarSource.ResourceFieldRef": "podenv",
	"EnvVarSource.ConfigMapKeyRef":  "podenv",
	"EnvVarSource.SecretKeyRef":     "podenv",
	"EnvVarSource.FileKeyRef":       "podenv",

	"EphemeralContainer.EphemeralContainerCommon": "as Container (TestEphemeralContainerCommonIsContainer)",
	"EphemeralContainer.TargetContainerName":      "ephemeralConfig: CRI NamespaceMode TARGET",
}

// refusedFields are refused by unsupported() whenever they are set; the
// value is what its message names.
var refusedFields = map[string]string{
	"PodSpec.HostUsers":            "hostUsers: false",
	"PodSpec.ResourceClaims":       "resourceClaims",
	"Container.RestartPolicyRules": "restartPolicyRules",
	"Container.VolumeDevices":      "volumeDevices",

	"VolumeSource.GCEPersistentDisk":     "only emptyDir",
	"VolumeSource.AWSElasticBlockStore":  "only emptyDir",
	"VolumeSource.GitRepo":               "only emptyDir",
	"VolumeSource.NFS":                   "only emptyDir",
	"VolumeSource.ISCSI":                 "only emptyDir",
	"VolumeSource.Glusterfs":             "only emptyDir",
	"VolumeSource.PersistentVolumeClaim": "only emptyDir",
	"VolumeSource.RBD":                   "only emptyDir",
	"VolumeSource.FlexVolume":            "only emptyDir",
	"VolumeSource.Cinder":                "only emptyDir",
	"VolumeSource.CephFS":                "only emptyDir",
	"VolumeSource.Flocker":               "only emptyDir",
	"VolumeSource.FC":                    "only emptyDir",
	"VolumeSource.AzureFile":             "only emptyDir",
	"VolumeSource.VsphereVolume":         "only emptyDir",
	"VolumeSource.Quobyte":               "only emptyDir",
	"VolumeSource.AzureDisk":             "only emptyDir",
	"VolumeSource.PhotonPersistentDisk":  "only emptyDir",
	"VolumeSource.PortworxVolume":        "only emptyDir",
	"VolumeSource.ScaleIO":               "only emptyDir",
	"VolumeSource.StorageOS":             "only emptyDir",
	"VolumeSource.CSI":                   "only emptyDir",
	"VolumeSource.Ephemeral":             "only emptyDir",
}

func TestPodSpecFieldsDecided(t *testing.T) {
	types := []reflect.Type{
		reflect.TypeOf(v1.PodSpec{}), reflect.TypeOf(v1.Container{}), reflect.TypeOf(v1.Probe{}),
		reflect.TypeOf(v1.ProbeHandler{}), reflect.TypeOf(v1.Lifecycle{}), reflect.TypeOf(v1.LifecycleHandler{}),
		reflect.TypeOf(v1.VolumeSource{}), reflect.TypeOf(v1.VolumeMount{}), reflect.TypeOf(v1.EnvVarSource{}),
		reflect.TypeOf(v1.EphemeralContainer{}), reflect.TypeOf(v1.ImageVolumeSource{}),
	}
	seen := map[string]bool{}
	for _, typ := range types {
		for i := 0; i < typ.NumField(); i++ {
			key := typ.Name() + "." + typ.Field(i).Name
			seen[key] = true
			_, h := honouredFields[key]
			_, r := refusedFields[key]
			switch {
			case h && r:
				t.Errorf("%s is both honoured and refused", key)
			case !h && !r:
				t.Errorf("%s: neither honoured nor refused; implement it or refuse it in unsupported() (admit.go), then list it here", key)
			}
		}
	}
	for key := range honouredFields {
		if !seen[key] {
			t.Errorf("%s is listed but is no field of the API", key)
		}
	}
	for key := range refusedFields {
		if !seen[key] {
			t.Errorf("%s is listed but is no field of the API", key)
		}
	}
}

// Every refused field, set to a non-zero value, makes unsupported() name
// it.
func TestRefusedFieldsAreRefused(t *testing.T) {
	for key, want := range refusedFields {
		typ, field, _ := strings.Cut(key, ".")
		pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c"}}}}
		var target reflect.Value
		switch typ {
		case "PodSpec":
			target = reflect.ValueOf(&pod.Spec).Elem()
		case "Container":
			target = reflect.ValueOf(&pod.Spec.Containers[0]).Elem()
		case "VolumeSource":
			pod.Spec.Volumes = []v1.Volume{{Name: "v"}}
			target = reflect.ValueOf(&pod.Spec.Volumes[0].VolumeSource).Elem()
		default:
			t.Fatalf("%s: no way to set it in this test", key)
		}
		f := target.FieldByName(field)
		setNonZero(t, key, f)
		err := unsupported(pod)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s set: unsupported() = %v, want it to name %q", key, err, want)
		}
	}
}

// setNonZero gives f a value that refusal must notice: a slice of one
// element with a name, a pointer to the zero value (false for *bool, since
// hostUsers: true is the default), a non-empty map.
func setNonZero(t *testing.T, key string, f reflect.Value) {
	t.Helper()
	switch f.Kind() {
	case reflect.Slice:
		s := reflect.MakeSlice(f.Type(), 1, 1)
		if n := s.Index(0); n.Kind() == reflect.Struct {
			if name := n.FieldByName("Name"); name.IsValid() && name.Kind() == reflect.String {
				name.SetString("x")
			}
			if name := n.FieldByName("ResourceName"); name.IsValid() && name.Kind() == reflect.String {
				name.SetString("cpu")
			}
		}
		f.Set(s)
	case reflect.Pointer:
		v := reflect.New(f.Type().Elem())
		if st := v.Elem(); st.Kind() == reflect.Struct {
			// A struct needs something inside to count as set.
			for i := 0; i < st.NumField(); i++ {
				if fld := st.Field(i); fld.Kind() == reflect.Map && fld.Type() == reflect.TypeOf(v1.ResourceList{}) {
					fld.Set(reflect.ValueOf(v1.ResourceList{v1.ResourceCPU: {}}))
				}
			}
		}
		f.Set(v)
	default:
		t.Fatalf("%s: kind %s not handled by the test", key, f.Kind())
	}
}
