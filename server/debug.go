package server

import (
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/emicklei/go-restful/v3"
)

const (
	pprofBasePath  = "/debug/pprof/"
	logsPath       = "/logs/"
	debugFlagsPath = "/debug/flags/v"
)

// debuggingPaths are the subtrees that answer 405 when debugging handlers
// are off: the kubelet's list (InstallDebuggingDisabledHandlers), with all
// of /debug/ rather than only /debug/pprof/.
var debuggingPaths = []string{
	"/run/", "/exec/", "/attach/", "/portForward/", "/containerLogs/",
	"/runningpods/", "/debug/", logsPath,
}

// addDisabled answers every request under the given paths (a path ending
// in / is a subtree) with 405 Method Not Allowed and msg.
func addDisabled(c *restful.Container, msg string, paths ...string) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, msg, http.StatusMethodNotAllowed)
	})
	for _, p := range paths {
		c.Handle(p, h)
	}
}

// addPprof serves Go's profiles under /debug/pprof/ as the kubelet's
// debugging handlers do (authorized as nodes/proxy): profile, symbol,
// cmdline, trace, and the named profiles (heap, goroutine, ...) through
// the index.
func (s *Server) addPprof(c *restful.Container) {
	ws := new(restful.WebService).Path(strings.TrimSuffix(pprofBasePath, "/"))
	handle := func(req *restful.Request, resp *restful.Response) {
		name := strings.TrimPrefix(req.Request.URL.Path, pprofBasePath)
		switch name {
		case "profile":
			pprof.Profile(resp, req.Request)
		case "symbol":
			pprof.Symbol(resp, req.Request)
		case "cmdline":
			pprof.Cmdline(resp, req.Request)
		case "trace":
			pprof.Trace(resp, req.Request)
		default:
			pprof.Index(resp, req.Request)
		}
	}
	ws.Route(ws.GET("/").To(handle))
	ws.Route(ws.GET("/{subpath:*}").To(handle))
	ws.Route(ws.POST("/{subpath:*}").To(handle))
	c.Add(ws)
}
