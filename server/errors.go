package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

// Sentinel errors; httpStatus maps them, and gRPC codes from the runtime,
// to the kubelet's status codes.
var (
	// errNotFound: unknown pod, container or route (404).
	errNotFound = errors.New("not found")
	// errBadRequest: undecodable parameters, or a request the kubelet
	// refuses with 400 (such as logs of a container that never ran).
	errBadRequest = errors.New("bad request")
	// errInvalid: decodable but invalid options (422).
	errInvalid = errors.New("invalid request")
)

// reply is an error whose text is the whole answer, word for word as the
// kubelet gives it, with a sentinel for its status code: wrapping a
// sentinel with %w would append the sentinel's own text.
type reply struct {
	msg  string
	kind error
}

func (e *reply) Error() string { return e.msg }
func (e *reply) Unwrap() error { return e.kind }

// replyf returns a reply of kind (one of the sentinels above).
func replyf(kind error, format string, args ...any) error {
	return &reply{msg: fmt.Sprintf(format, args...), kind: kind}
}

// IsNotFound reports whether err is or wraps errNotFound.
func IsNotFound(err error) bool { return errors.Is(err, errNotFound) }

// httpStatus maps an error to the status code the kubelet would answer.
func httpStatus(err error) int {
	switch {
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, errInvalid):
		return http.StatusUnprocessableEntity
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.NotFound:
			return http.StatusNotFound
		case codes.InvalidArgument:
			return http.StatusBadRequest
		case codes.ResourceExhausted:
			return http.StatusTooManyRequests
		case codes.Unavailable, codes.DeadlineExceeded:
			return http.StatusServiceUnavailable
		}
	}
	return http.StatusInternalServerError
}

// writeError answers err with its status code and message, logging it
// once here, where it is handled.
func writeError(logger klog.Logger, w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), logError(logger, err))
}

// writeErrorText answers err as go-restful's Response.WriteError, which the
// kubelet's /containerLogs uses: the status code and the error's text alone
// as the body, without the newline http.Error adds. The kubelet leaves the
// type to net/http, which sniffs such a text as text/plain; charset=utf-8
// (or sends none when the handler had set Transfer-Encoding); here it is
// set, with nosniff, so that no client takes the text for anything else.
// Through the apiserver the text is the message of the 400 or 404 it
// answers (its GenericHttpResponseChecker).
func writeErrorText(logger klog.Logger, w http.ResponseWriter, err error) {
	code := logError(logger, err)
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if _, werr := io.WriteString(w, err.Error()); werr != nil {
		logger.V(4).Info("Writing response failed", "err", werr)
	}
}

// logError logs err once, here, where it is handled, and returns its status
// code: an error of the agent's own, a refusal at a higher verbosity.
func logError(logger klog.Logger, err error) int {
	code := httpStatus(err)
	if code >= http.StatusInternalServerError {
		logger.Error(err, "Request failed")
	} else {
		logger.V(4).Info("Request refused", "status", code, "err", err)
	}
	return code
}
