package podsync

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crilogs "k8s.io/cri-client/pkg/logs"
	"k8s.io/klog/v2"
)

// criLogSeeds are CRI log lines, well-formed and not.
var criLogSeeds = []string{
	"2016-10-06T00:17:09.669794202Z stdout F text\n",
	"2016-10-06T00:17:09.669794202Z stderr P part\n",
	"2016-10-06T00:17:09Z stdout F:x:y tagged\n",
	"2016-10-06T00:17:09.669794202+02:00 stdout F  two spaces \n",
	"2016-10-06T00:17:09.669794202Z stdout F \n",
	"2016-10-06T00:17:09.669794202Z stdout P \n",
	"2016-10-06T00:17:09.669794202Z stdout F no newline",
	"2016-10-06T00:17:09.669794202Z stdin F text\n",
	"0000-01-01T00:00:00Z stdout F year zero\n",
	"2016-10-06T00:17:09.669794202Z stdout F nul\x00byte\r\n",
	"2016-10-06T00:17:09.669794202Z stdout F ../../etc/passwd %2e%2e\n",
	"2016-10-06T00:17:09.669794202Z stdout F h\u00e9llo \u2028 \U0001F600\n",
	"2016-10-06T00:17:09.669794202Z stdout F " + strings.Repeat("x", 16<<10) + "\n",
	`{"log":"docker json\n","stream":"stdout","time":"2016-10-06T00:17:09.669794202Z"}` + "\n",
	"not a log line\n",
	"   \n",
	"",
}

// FuzzParseCRILogLine fuzzes the agent's CRI log line parser (the
// termination message's FallbackToLogsOnError): no panic, an accepted
// line has an RFC 3339 time and a stdout or stderr stream and its message
// is the line's end, and for one whole line it agrees with the log reader
// of kubectl logs (cri-client's ReadLogs).
func FuzzParseCRILogLine(f *testing.F) {
	for _, s := range criLogSeeds {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "0.log")
	ctx := klog.NewContext(context.Background(), logr.Discard())
	f.Fuzz(func(t *testing.T, line []byte) {
		msg, ok := parseCRILogLine(line)
		fields := bytes.SplitN(line, []byte{' '}, 4)
		var ts time.Time
		if ok {
			if len(fields) != 4 {
				t.Fatalf("accepted %q with %d fields", line, len(fields))
			}
			var err error
			if ts, err = time.Parse(time.RFC3339Nano, string(fields[0])); err != nil {
				t.Fatalf("accepted %q with time %q: %v", line, fields[0], err)
			}
			if s := string(fields[1]); s != "stdout" && s != "stderr" {
				t.Fatalf("accepted %q with stream %q", line, s)
			}
			if want := fields[3]; !bytes.Equal(msg, want) && !bytes.Equal(append(bytes.Clone(msg), '\n'), want) {
				t.Fatalf("message of %q is %q", line, msg)
			}
		}
		// One whole line: what kubectl logs would show of it. Its reader
		// drops lines before the zero time, and takes a Docker JSON log
		// for a CRI one that does not parse.
		if bytes.IndexByte(line, '\n') != len(line)-1 || (ok && ts.Before(time.Time{})) || (!ok && json.Valid(line)) {
			return
		}
		if err := os.WriteFile(path, line, 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		err := crilogs.ReadLogs(ctx, path, "", &crilogs.LogOptions{}, nil, &stdout, &stderr)
		got := append(stdout.Bytes(), stderr.Bytes()...)
		if !ok {
			if len(got) > 0 {
				t.Fatalf("rejected %q, which ReadLogs reads as %q", line, got)
			}
			return
		}
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%q: message %q, ReadLogs %q (%v)", line, msg, got, err)
		}
		if (string(fields[1]) == "stderr") != (stderr.Len() > 0) && len(got) > 0 {
			t.Fatalf("%q: ReadLogs wrote stdout %q stderr %q", line, stdout.Bytes(), stderr.Bytes())
		}
	})
}

// FuzzLastLogLines fuzzes the end of a log as the termination message
// takes it, against a plain reading of its doc comment: the messages of
// the last lines complete lines (a cut first line dropped), at most limit
// bytes from their end.
func FuzzLastLogLines(f *testing.F) {
	for _, s := range criLogSeeds {
		f.Add([]byte(s+s+criLogSeeds[0]), false, uint8(2), uint16(2048))
		f.Add([]byte(s), true, uint8(80), uint16(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, cut bool, lines uint8, limit uint16) {
		n, max := int(lines)%100+1, int(limit)%4096
		got := lastLogLines(b, cut, n, max)

		var want []byte
		rest := b
		if cut {
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				rest = rest[i+1:]
			} else {
				rest = nil
			}
		}
		var all [][]byte
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			all, rest = append(all, rest[:i+1]), rest[i+1:]
		}
		if len(all) > n {
			all = all[len(all)-n:]
		}
		for _, l := range all {
			if m, ok := parseCRILogLine(l); ok {
				want = append(want, m...)
			}
		}
		if len(want) > max {
			want = want[len(want)-max:]
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("lastLogLines(%q, %v, %d, %d) = %q, want %q", b, cut, n, max, got, want)
		}
	})
}

// FuzzLastLogMessage fuzzes the container name and the log path the
// runtime reports: the termination message never holds a byte of a file
// outside the container's log directory, whatever links are there.
func FuzzLastLogMessage(f *testing.F) {
	for _, s := range [][2]string{
		{"c", "c/0.log"}, {"c", "c/link.log"}, {"c", "c/../../outside.log"}, {"c", "../outside.log"},
		{"..", "../outside.log"}, {".", "0.log"}, {"c/..", "0.log"}, {"c", "/etc/passwd"}, {"c", "c//0.log"},
		{"c", "c/%2e%2e/%2e%2e/outside.log"}, {"c\x00", "c/0.log"}, {"", ""}, {"c", "c/fifo"}, {"c", "c/dir.log"},
	} {
		f.Add(s[0], s[1])
	}
	root := f.TempDir()
	s := &Syncer{cfg: Config{RootDir: filepath.Join(root, "root"), PodLogsDir: filepath.Join(root, "logs")}}
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns1", UID: "uid1"}}
	podDir := s.podLogDir(pod)
	const secret = "SECRET-c41d"
	secretLog := "2024-05-06T07:08:09Z stdout F " + secret + "\n"
	for p, content := range map[string]string{
		filepath.Join(root, "secret.log"):          secretLog,
		filepath.Join(root, "logs", "outside.log"): secretLog,
		filepath.Join(podDir, "outside.log"):       secretLog, // beside the container directories
		filepath.Join(podDir, "c", "0.log"):        criLog("mine"),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(podDir, "c", "fifo"), 0o600); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "secret.log"), filepath.Join(podDir, "c", "link.log")); err != nil {
		f.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(podDir, "c", "dir.log"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, path string) {
		if !filepath.IsAbs(path) {
			path = podDir + "/" + path
		}
		msg, err := s.lastLogMessage(pod, name, path)
		if strings.Contains(msg, secret) {
			t.Fatalf("lastLogMessage(%q, %q) = %q, %v: read outside the container's log directory", name, path, msg, err)
		}
	})
}
