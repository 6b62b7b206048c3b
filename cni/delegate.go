package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/utils"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cni/delegateapi"
)

// maxDelegateRequest bounds the size of a delegate request.
const maxDelegateRequest = 1 << 20

// PodLookup returns what the plugins need to know about a pod beyond what
// the runtime passes in CNI_ARGS: its host ports, bandwidth annotations and
// the Node's pod CIDRs. ok is false when the agent does not know the pod;
// the network is then set up without port mappings or shaping.
type PodLookup func(ctx context.Context, namespace, name, uid string) (pn PodNetwork, ok bool)

// Delegate serves the nodeagent-delegate plugin that the runtime runs: ADD
// runs the agent's network config with Setup's rules, DEL runs Remove for a
// sandbox with a cached attachment and succeeds quietly for one without
// (the agent's own DEL before StopPodSandbox came first), CHECK runs Check.
type Delegate struct {
	m      *Manager
	ln     net.Listener
	lookup PodLookup
}

// ListenDelegate listens on the unix socket socketPath, mode 0600, for the
// delegate plugin; a stale socket from an earlier run is removed first.
func (m *Manager) ListenDelegate(socketPath string, lookup PodLookup) (*Delegate, error) {
	if err := os.MkdirAll(filepath.Dir(socketPath), 0o750); err != nil {
		return nil, fmt.Errorf("create directory of the CNI delegate socket: %w", err)
	}
	if err := os.Remove(socketPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale CNI delegate socket: %w", err)
	}
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("listen for the CNI delegate plugin: %w", err)
	}
	if err := os.Chmod(socketPath, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("restrict the CNI delegate socket: %w", err)
	}
	return &Delegate{m: m, ln: ln, lookup: lookup}, nil
}

// Serve answers the plugin until ctx ends, then closes the socket.
func (d *Delegate) Serve(ctx context.Context) error {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+delegateapi.Path, d.handle)
	srv := &http.Server{
		Handler:           mux,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(d.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve the CNI delegate plugin: %w", err)
	}
	return nil
}

// handle runs one forwarded CNI command. Its context ends when the plugin
// goes away, which happens when the runtime's own deadline kills it.
func (d *Delegate) handle(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	logger := klog.FromContext(ctx).WithName("cni-delegate")
	var req delegateapi.Request
	if err := json.NewDecoder(io.LimitReader(r.Body, maxDelegateRequest)).Decode(&req); err != nil {
		writeCNIError(ctx, w, http.StatusBadRequest, &types.Error{Code: types.ErrDecodingFailure, Msg: "decode delegate request", Details: err.Error()})
		return
	}
	logger = logger.WithValues("command", req.Command, "sandbox", req.ContainerID)
	ctx = klog.NewContext(ctx, logger)
	start := time.Now()
	out, err := d.run(ctx, req)
	if err != nil {
		logger.Error(err, "Delegated CNI command failed", "duration", time.Since(start))
		writeCNIError(ctx, w, http.StatusInternalServerError, toCNIError(err))
		return
	}
	logger.V(4).Info("Delegated CNI command done", "duration", time.Since(start))
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(out); err != nil {
		logger.Error(err, "Write delegated CNI result")
	}
}

// run runs one command and returns the result to print (ADD only).
func (d *Delegate) run(ctx context.Context, req delegateapi.Request) ([]byte, error) {
	// The container ID names files (libcni's cache entry
	// "<network>-<ID>-<interface>") and goes to every plugin: refuse what
	// libcni's ADD would, before anything runs. Found by fuzzing: ADD
	// checked it only inside libcni, so its rollback DEL ran the plugins
	// with any ID and removed the cache file it named, such as one outside
	// the cache dir for "/../../x".
	if err := utils.ValidateContainerID(req.ContainerID); err != nil {
		return nil, err
	}
	if req.IfName != ifName {
		return nil, &types.Error{Code: types.ErrInvalidEnvironmentVariables, Msg: fmt.Sprintf("nodeagent sets up interface %s, not %q", ifName, req.IfName)}
	}
	pn := d.podNetwork(ctx, req)
	switch req.Command {
	case "ADD":
		raw, _, err := d.m.add(ctx, pn)
		if err != nil {
			return nil, err
		}
		res, err := types100.NewResultFromResult(raw)
		if err != nil {
			return nil, fmt.Errorf("convert the result of pod %s/%s: %w", pn.Namespace, pn.Name, err)
		}
		out, err := json.Marshal(res)
		if err != nil {
			return nil, fmt.Errorf("encode the result of pod %s/%s: %w", pn.Namespace, pn.Name, err)
		}
		return out, nil
	case "DEL":
		atts, unreadable, err := d.m.attachments(pn.SandboxID)
		if err != nil {
			return nil, fmt.Errorf("delete network of sandbox %s: %w", pn.SandboxID, err)
		}
		// An unreadable entry may stand for a network still set up: Remove
		// names it and deletes with the current config.
		if len(atts) == 0 && len(unreadable) == 0 {
			klog.FromContext(ctx).V(4).Info("Nothing cached to delete: the agent tore the network down already")
			return nil, nil
		}
		return nil, d.m.Remove(ctx, pn)
	case "CHECK":
		return nil, d.m.Check(ctx, pn)
	default:
		return nil, &types.Error{Code: types.ErrInvalidEnvironmentVariables, Msg: fmt.Sprintf("unknown CNI command %q", req.Command)}
	}
}

// podNetwork builds the pod's network from the runtime's CNI_ARGS and what
// the agent knows about the pod.
func (d *Delegate) podNetwork(ctx context.Context, req delegateapi.Request) PodNetwork {
	args := parseCNIArgs(req.Args)
	ns, name, uid := args["K8S_POD_NAMESPACE"], args["K8S_POD_NAME"], args["K8S_POD_UID"]
	var pn PodNetwork
	if d.lookup != nil {
		var ok bool
		if pn, ok = d.lookup(ctx, ns, name, uid); !ok {
			klog.FromContext(ctx).V(2).Info("Pod not known to the agent: no port mappings or bandwidth", "pod", klog.KRef(ns, name), "podUID", uid)
		}
	}
	pn.Namespace, pn.Name, pn.UID = ns, name, uid
	pn.SandboxID = req.ContainerID
	pn.NetNSPath = req.NetNS
	return pn
}

// parseCNIArgs splits CNI_ARGS ("K=V;K=V").
func parseCNIArgs(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

// toCNIError keeps a plugin's own CNI error and wraps anything else; a
// missing network config asks the runtime to try again later.
func toCNIError(err error) *types.Error {
	var cniErr *types.Error
	if errors.As(err, &cniErr) && cniErr.Msg != "" {
		if cniErr.Msg == err.Error() {
			return cniErr
		}
		return &types.Error{Code: cniErr.Code, Msg: err.Error(), Details: cniErr.Details}
	}
	code := types.ErrInternal
	if IsNotReady(err) {
		code = types.ErrTryAgainLater
	}
	return &types.Error{Code: code, Msg: err.Error()}
}

// writeCNIError answers with a CNI error JSON; a failed write is logged.
func writeCNIError(ctx context.Context, w http.ResponseWriter, status int, e *types.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(e); err != nil {
		klog.FromContext(ctx).Error(err, "Write delegated CNI error")
	}
}
