package server

import (
	"net/http"
	"net/url"

	translator "k8s.io/apiserver/pkg/util/proxy"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// webSocketHandler returns the handler for a WebSocket client of an exec,
// attach or portForward whose runtime stream (SPDY) is at u, as the
// kubelet's server does, or nil if the request is not one:
//   - exec and attach offering v5.channel.k8s.io (v4 is negotiated if the
//     client prefers it) go through a StreamTranslatorHandler, an SPDY
//     client of the runtime fed by the WebSocket streams;
//   - portForward offering SPDY/3.1+portforward.k8s.io is tunneled: the
//     client speaks SPDY inside WebSocket messages, and spdyProxy proxies
//     it to the runtime unchanged.
//
// The runtime cannot serve these clients itself, so they are translated
// in redirect mode too.
func webSocketHandler(logger klog.Logger, kind string, u *url.URL, req *http.Request, opts streamOptions, spdyProxy http.Handler) http.Handler {
	switch {
	case kind == "portForward" && wsstream.IsWebSocketRequestWithTunnelingProtocol(req):
		logger.V(4).Info("Tunneling WebSocket port-forward to the runtime")
		return translator.NewTunnelingHandler(spdyProxy)
	case kind != "portForward" && wsstream.IsWebSocketRequestWithStreamCloseProtocol(req):
		logger.V(4).Info("Translating WebSocket stream to the runtime's SPDY")
		return translator.NewStreamTranslatorHandler(u, nil, 0, translator.Options{
			Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Tty: opts.TTY,
		})
	}
	return nil
}
