// Package delegateapi is the wire protocol between the nodeagent-delegate
// CNI plugin (cmd/nodeagent-cni), which the container runtime runs from its
// own CNI conf dir, and the agent, which runs the real pod network.
//
// containerd's CRI RunPodSandbox always runs CNI for a sandbox that is not
// on the host network, and fails unless the result has an eth0 with an
// address. So the runtime's conf dir holds one network whose only plugin is
// nodeagent-delegate: the plugin forwards the CNI command, its environment
// and its stdin to the agent as JSON over HTTP on a unix socket under the
// agent's root dir, and prints what the agent answers. The agent runs its
// own network config through libcni (package cni) and answers with that
// result, whose eth0 carries the pod IPs, or with a CNI error.
//
// The package is kept free of the agent's dependencies so that the plugin
// binary stays small.
package delegateapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// PluginType is the "type" of the delegate plugin in a network config.
const PluginType = "nodeagent-delegate"

// SocketName is the socket's file name under the agent's root dir.
const SocketName = "cni.sock"

// Path is the HTTP path of a CNI request.
const Path = "/v1/cni"

// Timeout bounds one request: the runtime's own CRI deadline usually ends
// it first, which kills the plugin and so cancels the agent's work.
const Timeout = 2 * time.Minute

// maxResponse bounds the size of an answer.
const maxResponse = 1 << 20

// Request is one CNI command as the runtime gave it to the plugin.
type Request struct {
	// Command is ADD, DEL or CHECK.
	Command     string `json:"command"`
	ContainerID string `json:"containerID"`
	// NetNS is the sandbox's network namespace path (empty on a DEL whose
	// namespace is gone).
	NetNS  string `json:"netns,omitempty"`
	IfName string `json:"ifName"`
	// Args is CNI_ARGS, "K=V;K=V".
	Args string `json:"args,omitempty"`
	// Config is the plugin's stdin: its network config.
	Config json.RawMessage `json:"config"`
}

// Call sends req to the agent listening on socketPath. On success it
// returns the agent's result (a CNI result JSON for ADD, empty otherwise).
// A failure of the agent is returned as the *types.Error it sent; a
// failure to reach it as a *types.Error with code ErrTryAgainLater.
func Call(ctx context.Context, socketPath string, req Request) ([]byte, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, &types.Error{Code: types.ErrInternal, Msg: "encode request to nodeagent", Details: err.Error()}
	}
	client := &http.Client{
		Timeout: Timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socketPath)
			},
		},
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://nodeagent"+Path, bytes.NewReader(body))
	if err != nil {
		return nil, &types.Error{Code: types.ErrInternal, Msg: "build request to nodeagent", Details: err.Error()}
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, &types.Error{Code: types.ErrTryAgainLater, Msg: "cannot reach nodeagent on " + socketPath, Details: err.Error()}
	}
	defer resp.Body.Close() //nolint:errcheck // read-only body
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, &types.Error{Code: types.ErrTryAgainLater, Msg: "read nodeagent's answer", Details: err.Error()}
	}
	if resp.StatusCode == http.StatusOK {
		return out, nil
	}
	var cniErr types.Error
	if err := json.Unmarshal(out, &cniErr); err != nil || cniErr.Msg == "" {
		return nil, &types.Error{Code: types.ErrInternal, Msg: fmt.Sprintf("nodeagent answered %s", resp.Status), Details: string(out)}
	}
	if cniErr.Code == 0 {
		cniErr.Code = types.ErrInternal
	}
	return nil, &cniErr
}
