package server

import (
	"errors"
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
	code := httpStatus(err)
	if code >= http.StatusInternalServerError {
		logger.Error(err, "Request failed")
	} else {
		logger.V(4).Info("Request refused", "status", code, "err", err)
	}
	http.Error(w, err.Error(), code)
}
