package configs

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Values of the kubelet's config flags: each writes to a field of the
// configuration only when the flag is given, so that unset flags leave the
// config file's value alone.

func parseString(s string) (string, error) { return s, nil }

func parseIP(s string) (string, error) {
	if net.ParseIP(s) == nil {
		return "", fmt.Errorf("%q is not an IP address", s)
	}
	return s, nil
}

func parseInt32(s string) (int32, error) {
	v, err := strconv.ParseInt(s, 0, 32)
	return int32(v), err
}

func parseInt64(s string) (int64, error) { return strconv.ParseInt(s, 0, 64) }

func parseDuration(s string) (metav1.Duration, error) {
	d, err := time.ParseDuration(s)
	return metav1.Duration{Duration: d}, err
}

// parseTaints parses "key=value:Effect,key2:Effect2" as --register-with-taints.
func parseTaints(s string) ([]v1.Taint, error) {
	var taints []v1.Taint
	for _, spec := range strings.Split(s, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		kv, effect, ok := strings.Cut(spec, ":")
		if !ok {
			return nil, fmt.Errorf("invalid taint %q: want <key>=<value>:<effect>", spec)
		}
		key, value, _ := strings.Cut(kv, "=")
		taints = append(taints, v1.Taint{Key: key, Value: value, Effect: v1.TaintEffect(effect)})
	}
	return taints, nil
}

// value sets *p, a plain field.
type value[T any] struct {
	p     *T
	typ   string
	parse func(string) (T, error)
}

func plain[T any](p *T, typ string, parse func(string) (T, error)) *value[T] {
	return &value[T]{p: p, typ: typ, parse: parse}
}

func (v *value[T]) Set(s string) error {
	x, err := v.parse(s)
	if err == nil {
		*v.p = x
	}
	return err
}
func (v *value[T]) String() string { return fmt.Sprint(*v.p) }
func (v *value[T]) Type() string   { return v.typ }

// ptrValue sets *p, an optional field, only when the flag is given.
type ptrValue[T any] struct {
	p     **T
	typ   string
	parse func(string) (T, error)
}

func optional[T any](p **T, typ string, parse func(string) (T, error)) *ptrValue[T] {
	return &ptrValue[T]{p: p, typ: typ, parse: parse}
}

func (v *ptrValue[T]) Set(s string) error {
	x, err := v.parse(s)
	if err == nil {
		*v.p = &x
	}
	return err
}

func (v *ptrValue[T]) String() string {
	if *v.p == nil {
		return ""
	}
	return fmt.Sprint(**v.p)
}
func (v *ptrValue[T]) Type() string { return v.typ }

// listValue is a comma-separated list; repeating the flag appends, as
// pflag's StringSlice.
type listValue struct {
	p   *[]string
	set bool
}

func (v *listValue) Set(s string) error {
	var items []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	if !v.set {
		*v.p = nil
		v.set = true
	}
	*v.p = append(*v.p, items...)
	return nil
}
func (v *listValue) String() string { return strings.Join(*v.p, ",") }
func (v *listValue) Type() string   { return "strings" }
