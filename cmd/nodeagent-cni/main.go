// Command nodeagent-cni is the CNI plugin of type "nodeagent-delegate"
// that the container runtime runs from its own CNI conf dir when nodeagent
// owns pod networking (--network-plugin=cni). It hands ADD, DEL and CHECK to
// the agent over the unix socket named by the "socket" key of its config,
// and prints the agent's answer: the result of the agent's network, whose
// eth0 carries the pod IPs, or a CNI error with a non-zero exit. VERSION it
// answers itself. See package cni/delegateapi for the protocol.
//
// The runtime's conf dir holds, for example:
//
//	{"cniVersion": "1.0.0", "name": "nodeagent",
//	 "plugins": [{"type": "nodeagent-delegate", "socket": "/var/lib/kubelet/cni.sock"}]}
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/nodeagent/nodeagent/cni/delegateapi"
)

// netConf is the plugin's config.
type netConf struct {
	types.PluginConf
	// Socket is the agent's delegate socket.
	Socket string `json:"socket"`
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:   func(a *skel.CmdArgs) error { return run("ADD", a) },
		Del:   func(a *skel.CmdArgs) error { return run("DEL", a) },
		Check: func(a *skel.CmdArgs) error { return run("CHECK", a) },
	}, version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0"), "nodeagent-delegate: hands pod networking to nodeagent")
}

// run forwards one command to the agent and prints its result.
func run(command string, args *skel.CmdArgs) error {
	var conf netConf
	if err := json.Unmarshal(args.StdinData, &conf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "parse network config", err.Error())
	}
	if conf.Socket == "" {
		return types.NewError(types.ErrInvalidNetworkConfig, `no "socket" in the config of the nodeagent-delegate plugin`, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), delegateapi.Timeout)
	defer cancel()
	out, err := delegateapi.Call(ctx, conf.Socket, delegateapi.Request{
		Command:     command,
		ContainerID: args.ContainerID,
		NetNS:       args.Netns,
		IfName:      args.IfName,
		Args:        args.Args,
		Config:      args.StdinData,
	})
	if err != nil {
		var cniErr *types.Error
		if errors.As(err, &cniErr) {
			return cniErr
		}
		return types.NewError(types.ErrInternal, "nodeagent", err.Error())
	}
	if command != "ADD" {
		return nil
	}
	res, err := types100.NewResult(out)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "parse nodeagent's result", fmt.Sprintf("%v: %s", err, out))
	}
	return types.PrintResult(res, conf.CNIVersion)
}
