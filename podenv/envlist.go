package podenv

import "sort"

// envList is an ordered set of variables; setting a name again moves it to
// the end with its new value.
type envList struct {
	names []string
	vals  map[string]string
}

func newEnvList() *envList { return &envList{vals: map[string]string{}} }

func (l *envList) set(name, value string) {
	if _, ok := l.vals[name]; ok {
		for i, n := range l.names {
			if n == name {
				l.names = append(l.names[:i], l.names[i+1:]...)
				break
			}
		}
	}
	l.names = append(l.names, name)
	l.vals[name] = value
}

func (l *envList) get(name string) (string, bool) {
	v, ok := l.vals[name]
	return v, ok
}

func (l *envList) list() []EnvVar {
	out := make([]EnvVar, 0, len(l.names))
	for _, n := range l.names {
		out = append(out, EnvVar{Name: n, Value: l.vals[n]})
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isTrue(b *bool) bool { return b != nil && *b }
