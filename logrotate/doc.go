// Package logrotate rotates the CRI log files of the agent's containers,
// as the kubelet's container log manager does: the runtime writes a
// container's log to one file and never rotates it, so the node agent
// must, or a chatty container fills the disk.
//
// Every monitor interval (containerLogMonitorInterval, 10 s by default)
// the manager lists the running containers that carry nodeagent's
// managed label, asks the runtime for each one's log path (ContainerStatus)
// and, when that file has reached containerLogMaxSize:
//
//  1. removes leftovers of an interrupted earlier round (a half-written
//     .tmp, or an uncompressed file whose .gz already exists);
//  2. deletes the oldest rotated files so that, once this rotation adds
//     one, at most containerLogMaxFiles files remain, current included;
//  3. gzips the rotated files that remain (to <name>.gz through a .tmp
//     file, so a crash never leaves a truncated archive under the final
//     name);
//  4. renames the current file to <path>.<YYYYMMDD-hhmmss> and calls CRI
//     ReopenContainerLog, so the runtime opens a fresh file at the path.
//     If the runtime refuses, the rename is undone.
//
// The newest rotated file thus stays uncompressed until the next rotation,
// as with the kubelet: a reader following the log (the agent's
// /containerLogs with follow, which uses k8s.io/cri-client/pkg/logs) still
// holds it open, drains it and moves on to the new file when the runtime
// creates it. A read without follow sees only the current file, again as
// the kubelet.
//
// A missing current file (someone deleted it) is reopened through the
// runtime. Log paths outside the pod logs directory are left alone: the
// manager renames and deletes files, and the path comes from the runtime.
// Rotation of the containers runs on containerLogMaxWorkers goroutines.
package logrotate
