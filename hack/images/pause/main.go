// Command pause is the harness's stand-in for the upstream pause binary
// (kubernetes build/pause/linux/pause.c), which hack/images puts into the
// registry.k8s.io/pause image as /pause. The image is the sandbox image,
// whose process holds a pod's namespaces, and the upstream e2e suite also
// runs it as an ordinary container. It behaves as pause.c does:
//   - with an argument -v (in any case) it prints its version and exits 0;
//   - on SIGINT or SIGTERM it exits 0 at once, so that a container of the
//     image stops when asked rather than after its grace period (busybox
//     sleep, which stood in before, ignores SIGTERM as PID 1);
//   - on SIGCHLD it reaps every exited child: in a pod that shares its PID
//     namespace (shareProcessNamespace) the kernel hands the orphans of
//     every container to the namespace's first process, the sandbox's
//     pause, and they would stay zombies otherwise;
//   - it ignores every other signal and waits forever. pause.c installs no
//     other handler, and the kernel delivers a PID namespace's first
//     process no signal it has no handler for, but SIGKILL and SIGSTOP from
//     an ancestor namespace (pid_namespaces(7)); Go's runtime would instead
//     exit on SIGHUP or dump its stacks on SIGQUIT.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is the tag of the upstream image this binary stands in for.
const version = "v3.10.2"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is pause's main: its exit status, once a signal ends it.
func run(args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if strings.EqualFold(a, "-v") {
			fmt.Fprintf(stdout, "pause.go %s\n", version)
			return 0
		}
	}
	// Notify with no signal relays them all, which keeps the runtime's
	// default action (exit, stack dump) off every one of them.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	// A child that exited before Notify sent its SIGCHLD to nobody.
	reap()
	// After the handlers, unlike pause.c: the warning then tells a test
	// that a signal sent from now on is handled.
	if os.Getpid() != 1 {
		// Not an error: pause runs outside of sandboxes too.
		fmt.Fprintln(stderr, "Warning: pause should be the first process")
	}
	for sig := range sigs {
		switch sig {
		case syscall.SIGINT, syscall.SIGTERM:
			fmt.Fprintf(stderr, "Shutting down, got signal: %v\n", sig)
			return 0
		case syscall.SIGCHLD:
			reap()
		}
	}
	return 42 // unreachable: the channel is never closed
}

// reap waits for every child that has exited, without blocking. Stopped
// children stay (no WUNTRACED), as pause.c's SA_NOCLDSTOP has it.
func reap() {
	for {
		pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return // none exited (0), or no children left (ECHILD)
		}
	}
}
