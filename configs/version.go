package configs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/nodeagent/nodeagent/version"
)

// ErrVersion is returned by Parse when --version was given; the version has
// then been printed and the program should exit 0.
var ErrVersion = errors.New("version requested")

// versionOutput is where --version prints the kubelet's line (a test seam).
var versionOutput io.Writer = os.Stdout

// versionFlag is the kubelet's --version (component-base's verflag):
// "true" (also plain --version), "false" or "raw". The kubelet's third
// form, --version=vX.Y.Z, sets the version the node reports; nodeagent
// refuses it rather than ignore it.
type versionFlag string

func addVersionFlag(fs *pflag.FlagSet) *versionFlag {
	v := versionFlag("false")
	fs.Var(&v, "version", `Print "Kubernetes <version>" (the kubelet's format, which kubeadm parses) to stdout and nodeagent's commit and build date to stderr, then exit; --version=raw prints all of it to stdout.`)
	fs.Lookup("version").NoOptDefVal = "true"
	return &v
}

func (v *versionFlag) String() string { return string(*v) }
func (v *versionFlag) Type() string   { return "version" }

func (v *versionFlag) Set(s string) error {
	if s == "raw" {
		*v = "raw"
		return nil
	}
	if strings.HasPrefix(s, "v") {
		return errors.New("setting the reported version is not implemented by nodeagent")
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New(`must be true, false or raw`)
	}
	*v = versionFlag(strconv.FormatBool(b))
	return nil
}

// print prints the version as asked. It returns ErrVersion when it printed
// something, nil for --version=false.
func (v versionFlag) print() error {
	info := version.Get()
	var err error
	switch v {
	case "true":
		// stdout holds exactly the kubelet's line: kubeadm's preflight reads
		// `kubelet --version` as ^Kubernetes v<semver>$ over the whole output.
		if _, err = fmt.Fprintln(versionOutput, info.Kubelet()); err == nil {
			_, err = fmt.Fprintln(usageOutput, info.String())
		}
	case "raw":
		_, err = fmt.Fprintf(versionOutput, "%#v\n", info)
	default:
		return nil
	}
	if err != nil {
		return fmt.Errorf("print version: %w", err)
	}
	return ErrVersion
}
