package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary run pause instead of the tests, so that
// a test can signal it. With "orphans" it first becomes the subreaper of
// its descendants, as a sandbox's pause is the init of a shared PID
// namespace, and starts a shell that leaves an orphan behind.
const helperEnv = "PAUSE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "orphans":
		if err := startOrphan(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(100)
		}
	}
	os.Exit(run(nil, os.Stdout, os.Stderr))
}

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of linux/prctl.h.
const prSetChildSubreaper = 36

// startOrphan makes this process its descendants' subreaper and starts a
// shell that prints its own PID and that of a background sleep, then
// exits: the shell is a child that exits at once, the sleep an orphan
// handed to this process that exits a little later.
func startOrphan() error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", e)
	}
	_, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "sleep 0.5 & echo $$ $!"},
		&syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
	return err
}

// pauseProc is the test binary running as pause (helperEnv).
type pauseProc struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	done   chan struct{} // closed once it has exited
	err    error         // of Wait, once done
}

// startPause starts the helper in the given mode and returns once its
// signal handlers are in place, which its warning on stderr (it is not
// PID 1 here) tells.
func startPause(t *testing.T, mode string) *pauseProc {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { outR.Close(); errR.Close() })
	p := &pauseProc{cmd: exec.Command(os.Args[0]), stdout: bufio.NewReader(outR), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	p.cmd.Stdout, p.cmd.Stderr = outW, errW
	err = p.cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	line, err := bufio.NewReader(errR).ReadString('\n')
	if want := "Warning: pause should be the first process\n"; line != want {
		t.Fatalf("pause's first line on stderr: %q (%v), want %q", line, err, want)
	}
	return p
}

func (p *pauseProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"-v"}, {"-V"}, {"x", "-v"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Errorf("exit status %d, want 0", code)
			}
			if got, want := stdout.String(), "pause.go "+version+"\n"; got != want {
				t.Errorf("stdout %q, want %q", got, want)
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr %q, want nothing", stderr.String())
			}
		})
	}
}

// SIGINT and SIGTERM end pause at once with status 0; the signals pause.c
// has no handler for leave it running.
func TestSignals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ignored []syscall.Signal
		end     syscall.Signal
	}{
		{name: "SIGTERM", end: syscall.SIGTERM},
		{name: "SIGINT", end: syscall.SIGINT},
		{name: "others ignored", ignored: []syscall.Signal{syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGALRM}, end: syscall.SIGTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPause(t, "plain")
			for _, sig := range tc.ignored {
				p.signal(t, sig)
			}
			if len(tc.ignored) > 0 {
				select {
				case <-p.done:
					t.Fatalf("pause ended (%v) after %v", p.err, tc.ignored)
				case <-time.After(300 * time.Millisecond):
				}
			}
			p.signal(t, tc.end)
			select {
			case <-p.done:
				if p.err != nil {
					t.Errorf("pause ended with %v after %v, want exit status 0", p.err, tc.end)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("pause still runs 5s after %v", tc.end)
			}
		})
	}
}

// An exited child and an orphan handed to pause are both reaped: neither
// stays a zombie.
func TestReapsChildrenAndOrphans(t *testing.T) {
	p := startPause(t, "orphans")
	line, err := p.stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("read the shell's PIDs: %v", err)
	}
	fields := strings.Fields(line)
	if len(fields) != 2 {
		t.Fatalf("the shell printed %q, want two PIDs", line)
	}
	for i, what := range []string{"the shell (a child)", "the sleep (an orphan)"} {
		pid, err := strconv.Atoi(fields[i])
		if err != nil {
			t.Fatal(err)
		}
		state, gone := "", false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if state, gone = procState(pid); gone {
				break
			}
		}
		if !gone {
			t.Errorf("%s, PID %d, not reaped: state %s", what, pid, state)
		}
	}
	select {
	case <-p.done:
		t.Fatalf("pause ended: %v", p.err)
	default:
	}
}

// procState returns the state letter of a process (Z for a zombie), or
// gone once it no longer exists.
func procState(pid int) (state string, gone bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return "", true
	}
	if err != nil {
		return err.Error(), false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3], false
	}
	return s, false
}
