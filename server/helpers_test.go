package server

import (
	"net/url"
	"reflect"

	v1 "k8s.io/api/core/v1"
)

func parseQuery(s string) (url.Values, error) { return url.ParseQuery(s) }

func equalLogOptions(a, b v1.PodLogOptions) bool {
	if a.SinceTime != nil && b.SinceTime != nil && a.SinceTime.Equal(b.SinceTime) {
		a.SinceTime, b.SinceTime = nil, nil
	}
	return reflect.DeepEqual(a, b)
}
