package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// metric is one line of the comparison table.
type metric struct {
	title  string
	key    string  // a Samples or Values key
	stat   string  // p50, p90, p99 (of samples), or "" for a value
	unit   string  // ms, MB, cores, s, MB/s, req
	target float64 // nodeagent/kubelet ratio aimed at; 0 = none
	higher bool    // higher is better (throughput)
}

var metrics = []metric{
	{"sequential start p50", "start_sequential_ms", "p50", "ms", 0, false},
	{"sequential start p90", "start_sequential_ms", "p90", "ms", 0, false},
	{"sequential start p99", "start_sequential_ms", "p99", "ms", 0, false},
	{"burst 30 start p50", "start_burst30_ms", "p50", "ms", 0, false},
	{"burst 30 start p99", "start_burst30_ms", "p99", "ms", 0, false},
	{"burst 30 all running", "burst30_all_running_ms", "", "ms", 0.6, false},
	{"burst 100 start p50", "start_burst100_ms", "p50", "ms", 0, false},
	{"burst 100 start p99", "start_burst100_ms", "p99", "ms", 0, false},
	{"burst 100 all running", "burst100_all_running_ms", "", "ms", 0, false},
	{"graceful delete p50", "delete_sequential_ms", "p50", "ms", 0.3, false},
	{"graceful delete p99", "delete_sequential_ms", "p99", "ms", 0, false},
	{"burst 30 delete, all gone", "burst30_all_deleted_ms", "", "ms", 0, false},
	{"RSS idle, 0 pods", "rss_idle_0_mb", "", "MB", 0, false},
	{"RSS, 100 pods running", "rss_running_mb", "", "MB", 0.4, false},
	{"RSS peak, burst of 100", "rss_burst_peak_mb", "", "MB", 0, false},
	{"CPU idle, 0 pods", "cpu_idle_0_cores", "", "cores", 0.5, false},
	{"CPU idle, 100 pods", "cpu_idle_running_cores", "", "cores", 0, false},
	{"CPU during burst of 100", "cpu_burst_seconds", "", "s", 0, false},
	{"apiserver requests per pod", "apiserver_requests_per_pod", "", "req", 1.0, false},
	{"kubectl logs -f", "stream_logs_bytes_per_s", "", "MB/s", 1.0, true},
	{"kubectl exec stdout", "stream_exec_bytes_per_s", "", "MB/s", 1.0, true},
	{"kubectl port-forward", "stream_portforward_bytes_per_s", "", "MB/s", 1.0, true},
	{"kubectl exec streams cut short", "stream_exec_short", "", "", 0, false},
}

func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	out := fs.String("out", "docs/benchmarks.md", "markdown file to write")
	svg := fs.String("svg", "docs/benchmark-start-latency.svg", "start-latency plot to write")
	machine := fs.String("machine", "", "machine description")
	_ = fs.Parse(args)
	runs := map[string][]*Results{}
	for _, f := range fs.Args() {
		r, err := readResults(f)
		if err != nil {
			return err
		}
		runs[r.Agent] = append(runs[r.Agent], r)
	}
	na, kl := runs["nodeagent"], runs["kubelet"]
	if len(na) == 0 || len(kl) == 0 {
		return fmt.Errorf("need results of both nodeagent and kubelet")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Run of %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %s; %d CPUs. Repetitions: nodeagent %d, kubelet %d. Figures are medians over the runs, [min–max] of the per-run figures.\n\n",
		*machine, runtime.NumCPU(), len(na), len(kl))
	if fl := runs["floor"]; len(fl) > 0 {
		f := stat(fl, "start_floor_ms", "p50")
		n := stat(na, "start_sequential_ms", "p50")
		k := stat(kl, "start_sequential_ms", "p50")
		fmt.Fprintf(&b, "Runtime floor (RunPodSandbox + CreateContainer + StartContainer by direct CRI calls): p50 %.0f ms, stop+remove p50 %.0f ms. "+
			"Sequential start p50 above the floor: nodeagent %+.0f ms (target ≤ 40), kubelet %+.0f ms.\n\n",
			f.mid, stat(fl, "delete_floor_ms", "p50").mid, n.mid-f.mid, k.mid-f.mid)
		if fb := stat(fl, "burst30_all_running_ms", ""); !math.IsNaN(fb.mid) {
			fmt.Fprintf(&b, "Runtime floor for a burst: 30 sandboxes + containers started at once by direct CRI calls all run after %.0f ms "+
				"(all stopped and removed after %.0f ms); no agent can start such a burst faster than that.\n\n",
				fb.mid, stat(fl, "burst30_all_deleted_ms", "").mid)
		}
	}
	b.WriteString("| figure | nodeagent | kubelet | ratio | target |\n|---|---|---|---|---|\n")
	for _, m := range metrics {
		n, k := stat(na, m.key, m.stat), stat(kl, m.key, m.stat)
		if math.IsNaN(n.mid) && math.IsNaN(k.mid) {
			continue
		}
		ratio := n.mid / k.mid
		target := ""
		if m.target > 0 {
			ok := ratio <= m.target
			if m.higher {
				ok = ratio >= m.target
			}
			mark := "missed"
			if ok {
				mark = "met"
			}
			op := "≤"
			if m.higher {
				op = "≥"
			}
			target = fmt.Sprintf("%s %.1f: %s", op, m.target, mark)
		}
		r := fmt.Sprintf("%.2f", ratio)
		if math.IsNaN(ratio) || math.IsInf(ratio, 0) {
			r = "–" // no figure on one side, or 0/0 (a count of none)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", m.title, n.format(m.unit), k.format(m.unit), r, target)
	}
	b.WriteString("\nnodeagent's pod start by phase (mean over the sequential pods, from its /metrics): ")
	var phases []string
	for _, p := range []string{"volumes", "sandbox", "network", "image", "create", "start", "status"} {
		if f := stat(na, "phase_"+p+"_ms", ""); !math.IsNaN(f.mid) {
			phases = append(phases, fmt.Sprintf("%s %.1f ms", p, f.mid))
		}
	}
	b.WriteString(strings.Join(phases, ", ") + ".\n")
	b.WriteString("\n![start latency](benchmark-start-latency.svg)\n")
	if err := writeSVG(*svg, na, kl); err != nil {
		return err
	}
	old, _ := os.ReadFile(*out)
	head, _, _ := strings.Cut(string(old), "<!-- results -->")
	if head == "" {
		head = "# Benchmarks\n\n"
	}
	fmt.Print(b.String())
	return os.WriteFile(*out, []byte(head+"<!-- results -->\n"+b.String()), 0o644)
}

type figure struct{ mid, lo, hi float64 }

func (f figure) format(unit string) string {
	if math.IsNaN(f.mid) {
		return "–"
	}
	scale := 1.0
	if unit == "MB/s" {
		scale = 1e-6
	}
	p := func(v float64) string {
		switch unit {
		case "cores", "s":
			return fmt.Sprintf("%.3f", v*scale)
		case "req":
			return fmt.Sprintf("%.1f", v*scale)
		}
		return fmt.Sprintf("%.0f", v*scale)
	}
	if f.lo == f.hi {
		return strings.TrimSpace(p(f.mid) + " " + unit)
	}
	return fmt.Sprintf("%s %s [%s–%s]", p(f.mid), unit, p(f.lo), p(f.hi))
}

// stat is the median over runs of each run's figure, with its range.
func stat(runs []*Results, key, q string) figure {
	var per []float64
	for _, r := range runs {
		if q == "" {
			if v, ok := r.Values[key]; ok {
				per = append(per, v)
			}
			continue
		}
		if s := r.Samples[key]; len(s) > 0 {
			per = append(per, quantile(s, q))
		}
	}
	if len(per) == 0 {
		return figure{math.NaN(), math.NaN(), math.NaN()}
	}
	sort.Float64s(per)
	mid := per[len(per)/2]
	if len(per)%2 == 0 {
		mid = (per[len(per)/2-1] + per[len(per)/2]) / 2
	}
	return figure{mid, per[0], per[len(per)-1]}
}

func quantile(s []float64, q string) float64 {
	c := append([]float64(nil), s...)
	sort.Float64s(c)
	f := map[string]float64{"p50": 0.5, "p90": 0.9, "p99": 0.99}[q]
	return c[int(math.Round(f*float64(len(c)-1)))]
}

// writeSVG plots the cumulative distribution of sequential start latency.
func writeSVG(path string, na, kl []*Results) error {
	series := map[string][]float64{}
	maxV := 0.0
	for name, runs := range map[string][]*Results{"nodeagent": na, "kubelet": kl} {
		for _, r := range runs {
			series[name] = append(series[name], r.Samples["start_sequential_ms"]...)
		}
		sort.Float64s(series[name])
		if n := len(series[name]); n > 0 && series[name][n-1] > maxV {
			maxV = series[name][n-1]
		}
	}
	const w, h, m = 640.0, 360.0, 50.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="20">Sequential pod start latency, cumulative distribution</text>`, m)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/><line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, m, h-m, w-m, h-m, m, m, m, h-m)
	for i := 0; i <= 4; i++ {
		v := maxV * float64(i) / 4
		x := m + (w-2*m)*float64(i)/4
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%.0f ms</text>`, x, h-m+18, v)
	}
	colors := map[string]string{"nodeagent": "#1f77b4", "kubelet": "#d62728"}
	ly := m + 10
	for _, name := range []string{"nodeagent", "kubelet"} {
		s := series[name]
		var pts []string
		for i, v := range s {
			x := m + (w-2*m)*v/maxV
			y := (h - m) - (h-2*m)*float64(i+1)/float64(len(s))
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, colors[name], strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`, w-m-100, ly, colors[name], name)
		ly += 16
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
