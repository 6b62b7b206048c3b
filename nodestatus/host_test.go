package nodestatus

import "testing"

func TestParseMemInfo(t *testing.T) {
	for _, tc := range []struct {
		name         string
		in           string
		total, avail uint64
		wantErr      bool
	}{
		{"kB", "MemTotal:       16318732 kB\nMemFree:  1 kB\nMemAvailable:   8000000 kB\n", 16318732 * 1024, 8000000 * 1024, false},
		{"missing available", "MemTotal: 1 kB\n", 0, 0, true},
		{"garbage", "MemTotal: x kB\nMemAvailable: 1 kB\n", 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total, avail, err := parseMemInfo([]byte(tc.in))
			if (err != nil) != tc.wantErr || total != tc.total || avail != tc.avail {
				t.Errorf("got %d %d %v, want %d %d err=%v", total, avail, err, tc.total, tc.avail, tc.wantErr)
			}
		})
	}
}

func TestParseLoadavgProcs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"0.52 0.58 0.59 3/1203 12345\n", 1203, false},
		{"0.52 0.58 0.59\n", 0, true},
		{"0.52 0.58 0.59 3 1\n", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseLoadavgProcs([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %d %v, want %d err=%v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseOSRelease(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", "Debian GNU/Linux 12 (bookworm)"},
		{"PRETTY_NAME=Alpine\n", "Alpine"},
		{"NAME=x\n", ""},
	} {
		if got := parseOSRelease([]byte(tc.in)); got != tc.want {
			t.Errorf("parseOSRelease(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestProcHost reads the real machine; it only checks plausibility.
func TestProcHost(t *testing.T) {
	h := procHost{}
	if total, avail, err := h.Memory(); err != nil || total == 0 || avail > total {
		t.Errorf("Memory() = %d %d %v", total, avail, err)
	}
	if st, err := h.Filesystem("/"); err != nil || st.Capacity == 0 || st.Available > st.Capacity || st.InodesFree > st.Inodes {
		t.Errorf("Filesystem(/) = %+v %v", st, err)
	}
	if n, max, err := h.PIDs(); err != nil || n == 0 || max == 0 {
		t.Errorf("PIDs() = %d %d %v", n, max, err)
	}
	if si := h.SystemInfo(); si.KernelVersion == "" || si.BootID == "" {
		t.Errorf("SystemInfo() = %+v", si)
	}
}
