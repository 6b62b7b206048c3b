// Package podenv builds the environment of a container the way the kubelet
// does, and resolves downward API field and resource references for both
// environment variables and downwardAPI volumes.
//
// A container's environment has three sources, from lowest to highest
// precedence:
//
//  1. Service environment variables: for every service of the pod's namespace
//     with a cluster IP (only when pod.Spec.EnableServiceLinks is nil or true)
//     and, always, the "kubernetes" service of the master namespace, the
//     FOO_SERVICE_HOST / FOO_SERVICE_PORT variables and the docker-links style
//     FOO_PORT_80_TCP_* variables.
//  2. container.EnvFrom: every key of the referenced ConfigMap or Secret,
//     with the optional prefix.
//  3. container.Env: literal values with $(VAR) expansion against the
//     variables above (an unknown reference is kept as written, $$ escapes
//     the $), or values taken from the downward API, a ConfigMap key or a
//     Secret key.
//
// Resolver.Env returns the variables in that order, each name once, a later
// definition replacing an earlier one. A ConfigMap, Secret or key that is
// missing and not optional makes Env fail with an error wrapping ErrConfig,
// which the caller reports as CreateContainerConfigError. ConfigMaps and
// Secrets come from Resolver.Objects, the volume manager's watch of each
// (no GET per container start, as the kubelet's watch-based manager), or
// from the API when it is not set.
//
// FieldValue and ResourceValue are the single implementation of the downward
// API in nodeagent; package volumes uses them for downwardAPI and projected
// volumes.
package podenv
