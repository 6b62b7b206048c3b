// Command bench measures a node agent (nodeagent or the upstream kubelet)
// on the local cluster, for the side-by-side benchmark of hack/bench.sh:
//
//	bench run   -agent NAME -pid-file F -out F.json   pod start/delete latency, memory, CPU, apiserver requests, streaming
//	bench floor -runtime-endpoint E -out F.json      the runtime floor: sandbox + container by direct CRI calls
//	bench report -out docs/benchmarks.md A.json B.json floor.json
//
// Latencies are seen by a client: from the create call to the watch event
// that shows every container running, and from the delete call to the
// object gone. Nothing here is a test: it only measures and prints.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench run|floor|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:])
	case "floor":
		err = floorCmd(os.Args[2:])
	case "report":
		err = reportCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Results are one agent's (or the floor's) figures, in milliseconds,
// megabytes, CPU seconds and bytes per second.
type Results struct {
	Agent   string               `json:"agent"`
	Samples map[string][]float64 `json:"samples"`
	Values  map[string]float64   `json:"values"`
}

func newResults(agent string) *Results {
	return &Results{Agent: agent, Samples: map[string][]float64{}, Values: map[string]float64{}}
}

func (r *Results) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func readResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &Results{}
	return r, json.Unmarshal(b, r)
}

func commonFlags(fs *flag.FlagSet) (kubeconfig, node, image *string) {
	kubeconfig = fs.String("kubeconfig", "/var/lib/nodeagent-harness/admin.kubeconfig", "admin kubeconfig")
	node = fs.String("node", "nodeagent-node", "node to bind pods to")
	image = fs.String("image", "registry.k8s.io/e2e-test-images/busybox:1.37.0-1", "image")
	return
}
