package podsync

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/cri"
)

const termPath = "/dev/termination-log"

// criLog renders messages as a CRI log: each a full line on stdout.
func criLog(msgs ...string) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "2024-05-06T07:08:09.123456789Z stdout F %s\n", m)
	}
	return b.String()
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTerminationMessage(t *testing.T) {
	root := t.TempDir()
	s := &Syncer{cfg: Config{RootDir: filepath.Join(root, "root"), PodLogsDir: filepath.Join(root, "logs")}}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns1", UID: "uid1"}}
	ctrDir := filepath.Join(s.podDir(pod), "containers", "c")
	logPath := filepath.Join(s.podLogDir(pod), "c", "0.log")
	secret := writeFile(t, filepath.Join(root, "secret"), "SECRET")
	elsewhere := writeFile(t, filepath.Join(root, "elsewhere.log"), criLog("SECRET"))

	// 200 lines of 50 bytes: the last 80 are 4000 bytes, cut to 2048.
	var lines []string
	for i := 1; i <= 200; i++ {
		lines = append(lines, fmt.Sprintf("line-%03d %s", i, strings.Repeat("x", 40)))
	}
	var tail80 string
	for _, l := range lines[120:] {
		tail80 += l + "\n"
	}
	wantLogs := tail80[len(tail80)-maxTerminationMessageLogLength:]

	big := strings.Repeat("a", 10<<20-maxTerminationMessageLength) + strings.Repeat("b", maxTerminationMessageLength)

	type setup struct {
		file    string // content of the agent's termination file
		noFile  bool   // no termination file at all
		log     string // content of the container's log
		logPath string // overrides the runtime's log path
		// mounts listed before the agent's file at the same path.
		userMounts []string
		// prepare changes the agent's file (path given) before reading.
		prepare func(t *testing.T, own string)
	}
	for _, tc := range []struct {
		name     string
		setup    setup
		exit     int32
		reason   string
		message  string // the runtime's
		policy   v1.TerminationMessagePolicy
		want     string
		wantFunc func(string) error
	}{
		{name: "file", setup: setup{file: "bye"}, exit: 1, want: "bye"},
		{name: "runtime message first", setup: setup{file: "bye"}, exit: 1, message: "oom", want: "oom"},
		{name: "user mount at the same path ignored", setup: setup{file: "mine", userMounts: []string{secret}}, exit: 1, want: "mine"},
		{name: "only a user mount", setup: setup{noFile: true, userMounts: []string{secret}}, exit: 1, want: ""},
		{name: "user file in the container dir not named termination-",
			setup: setup{noFile: true, userMounts: []string{writeFile(t, filepath.Join(ctrDir, "other"), "SECRET")}}, exit: 1, want: ""},
		{name: "other container's termination file",
			setup: setup{noFile: true, userMounts: []string{writeFile(t, filepath.Join(s.podDir(pod), "containers", "d", "termination-1"), "SECRET")}}, exit: 1, want: ""},
		{name: "unclean path",
			setup: setup{noFile: true, userMounts: []string{filepath.Dir(writeFile(t, filepath.Join(ctrDir, "termination-x"), "SECRET")) + "/../c/termination-x"}}, exit: 1, want: ""},
		{name: "symlink not followed", exit: 1, want: "", setup: setup{prepare: func(t *testing.T, own string) {
			if err := os.Remove(own); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(secret, own); err != nil {
				t.Fatal(err)
			}
		}}},
		{name: "FIFO not read", exit: 1, want: "", setup: setup{prepare: func(t *testing.T, own string) {
			if err := os.Remove(own); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mkfifo(own, 0o600); err != nil {
				t.Fatal(err)
			}
		}}},
		{name: "10 MB file: its last 4096 bytes", setup: setup{file: big}, exit: 1, want: big[len(big)-maxTerminationMessageLength:]},
		{name: "fallback: last 80 lines, 2048 bytes", setup: setup{log: criLog(lines...)}, exit: 1, policy: v1.TerminationMessageFallbackToLogsOnError, want: wantLogs},
		{name: "fallback without a termination file", setup: setup{noFile: true, log: criLog("last words")}, exit: 2, policy: v1.TerminationMessageFallbackToLogsOnError, want: "last words\n"},
		{name: "fallback: file first", setup: setup{file: "bye", log: criLog(lines...)}, exit: 1, policy: v1.TerminationMessageFallbackToLogsOnError, want: "bye"},
		{name: "fallback: not on exit code 0", setup: setup{log: criLog(lines...)}, exit: 0, policy: v1.TerminationMessageFallbackToLogsOnError, want: ""},
		{name: "fallback: not when the container could not run", setup: setup{log: criLog(lines...)}, exit: 128, reason: "ContainerCannotRun", policy: v1.TerminationMessageFallbackToLogsOnError, want: ""},
		{name: "policy File: no fallback", setup: setup{log: criLog(lines...)}, exit: 1, policy: v1.TerminationMessageReadFile, want: ""},
		{name: "fallback: log outside the pod's log dir", setup: setup{logPath: elsewhere}, exit: 1, policy: v1.TerminationMessageFallbackToLogsOnError, want: ""},
		{name: "fallback: log link not followed", setup: setup{log: "link"}, exit: 1, policy: v1.TerminationMessageFallbackToLogsOnError, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.RemoveAll(filepath.Dir(logPath))
			st := &runtimeapi.ContainerStatus{
				Id:          "id-" + tc.name,
				Metadata:    &runtimeapi.ContainerMetadata{Name: "c"},
				State:       runtimeapi.ContainerState_CONTAINER_EXITED,
				ExitCode:    tc.exit,
				Reason:      tc.reason,
				Message:     tc.message,
				LogPath:     logPath,
				Annotations: map[string]string{cri.ContainerTerminationMessagePathAnnotation: termPath},
			}
			if tc.policy != "" {
				st.Annotations[cri.ContainerTerminationMessagePolicyAnnotation] = string(tc.policy)
			}
			for _, p := range tc.setup.userMounts {
				st.Mounts = append(st.Mounts, &runtimeapi.Mount{ContainerPath: termPath, HostPath: p})
			}
			if !tc.setup.noFile {
				f, err := os.CreateTemp(ctrDir, terminationFilePrefix)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteString(tc.setup.file); err != nil {
					t.Fatal(err)
				}
				_ = f.Close()
				if tc.setup.prepare != nil {
					tc.setup.prepare(t, f.Name())
				}
				st.Mounts = append(st.Mounts, &runtimeapi.Mount{ContainerPath: termPath, HostPath: f.Name()})
			}
			switch {
			case tc.setup.logPath != "":
				st.LogPath = tc.setup.logPath
			case tc.setup.log == "link":
				if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(elsewhere, logPath); err != nil {
					t.Fatal(err)
				}
			case tc.setup.log != "":
				writeFile(t, logPath, tc.setup.log)
			}

			done := make(chan string, 1)
			go func() { done <- s.terminationMessage(context.Background(), pod, "c", st) }()
			var got string
			select {
			case got = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("terminationMessage blocked")
			}
			if got != tc.want {
				t.Errorf("message (%d bytes) = %q, want (%d bytes) %q", len(got), trunc(got), len(tc.want), trunc(tc.want))
			}
			if strings.Contains(got, "SECRET") {
				t.Errorf("message reveals a file that is not the agent's: %q", trunc(got))
			}
		})
	}
}

func trunc(s string) string {
	if len(s) > 100 {
		return s[:50] + "..." + s[len(s)-50:]
	}
	return s
}

func TestLastLogLines(t *testing.T) {
	const ts = "2024-05-06T07:08:09.1Z"
	for _, tc := range []struct {
		name  string
		log   string
		cut   bool
		lines int
		limit int
		want  string
	}{
		{name: "full lines", log: ts + " stdout F a\n" + ts + " stderr F b\n", lines: 80, limit: 2048, want: "a\nb\n"},
		{name: "partial lines joined", log: ts + " stdout P ab\n" + ts + " stdout P cd\n" + ts + " stdout F ef\n", lines: 80, limit: 2048, want: "abcdef\n"},
		{name: "tags after the P", log: ts + " stdout P:x ab\n" + ts + " stdout F:y cd\n", lines: 80, limit: 2048, want: "abcd\n"},
		{name: "empty message", log: ts + " stdout F \n" + ts + " stdout F z\n", lines: 80, limit: 2048, want: "\nz\n"},
		{name: "last lines", log: ts + " stdout F 1\n" + ts + " stdout F 2\n" + ts + " stdout F 3\n", lines: 2, limit: 2048, want: "2\n3\n"},
		{name: "byte limit keeps the end", log: ts + " stdout F 12345\n", lines: 80, limit: 3, want: "45\n"},
		{name: "unterminated last line ignored", log: ts + " stdout F a\n" + ts + " stdout F b", lines: 80, limit: 2048, want: "a\n"},
		{name: "cut first line dropped", log: "dout F a\n" + ts + " stdout F b\n", cut: true, lines: 80, limit: 2048, want: "b\n"},
		{name: "unparsable lines skipped", log: "garbage\n" + ts + " stdin F a\nnot-a-time stdout F b\n" + ts + " stdout F c\n", lines: 80, limit: 2048, want: "c\n"},
		{name: "no newline at all", log: ts + " stdout F a", lines: 80, limit: 2048, want: ""},
		{name: "empty", log: "", lines: 80, limit: 2048, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lastLogLines([]byte(tc.log), tc.cut, tc.lines, tc.limit)
			if !bytes.Equal(got, []byte(tc.want)) {
				t.Errorf("lastLogLines = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLastLogMessageReadsTheEnd checks that only the end of a big log is
// read: lines before the window do not count.
func TestLastLogMessageReadsTheEnd(t *testing.T) {
	root := t.TempDir()
	s := &Syncer{cfg: Config{RootDir: filepath.Join(root, "root"), PodLogsDir: filepath.Join(root, "logs")}}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns1", UID: "uid1"}}
	logPath := filepath.Join(s.podLogDir(pod), "c", "0.log")
	// One 1 MiB record (never fully read), then a short one.
	log := criLog(strings.Repeat("x", 1<<20), "end")
	writeFile(t, logPath, log)
	got, err := s.lastLogMessage(pod, "c", logPath)
	if err != nil || got != "end\n" {
		t.Errorf("lastLogMessage = %q, %v; want %q", trunc(got), err, "end\n")
	}
}
