package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Figure is one row of the table.
type Figure struct {
	Name     string
	Measured string
	Target   string
	// Holds is "yes", "no", or "" when the figure has no target.
	Holds string
}

// holds renders a comparison as yes or no.
func holds(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// Machine describes where the figures were measured.
type Machine struct {
	Date     time.Time
	Cores    int
	MemoryGB float64
	CPU      string
	Go       string
	Commit   string
	// Load is the 1-minute load average at the start and at the end: on a
	// shared machine it says how much else was running.
	Load [2]string
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func thisMachine() Machine {
	m := Machine{Date: time.Now().UTC(), Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown CPU", Commit: "unknown"}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if n, err := statusKB(string(b), "MemTotal"); err == nil {
			m.MemoryGB = float64(n) / (1 << 30)
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if err := exec.Command("git", "diff", "--quiet", "HEAD", "--", ".", ":!BENCHMARKS.md").Run(); err != nil {
			m.Commit += " (with uncommitted changes)"
		}
	}
	return m
}

// table renders the figures as a Markdown table.
func table(figs []Figure) string {
	rows := [][]string{{"figure", "measured", "target", "holds"}}
	for _, f := range figs {
		h := f.Holds
		if h == "" {
			h = "–"
		}
		t := f.Target
		if t == "" {
			t = "–"
		}
		rows = append(rows, []string{f.Name, f.Measured, t, h})
	}
	widths := make([]int, 4)
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(r []string) {
		b.WriteString("|")
		for i, c := range r {
			fmt.Fprintf(&b, " %s%s |", c, strings.Repeat(" ", widths[i]-len([]rune(c))))
		}
		b.WriteString("\n")
	}
	line(rows[0])
	sep := make([]string, 4)
	for i, w := range widths {
		sep[i] = strings.Repeat("-", w)
	}
	line(sep)
	for _, r := range rows[1:] {
		line(r)
	}
	return b.String()
}

// missed lists the figures whose target does not hold.
func missed(figs []Figure) []string {
	var out []string
	for _, f := range figs {
		if f.Holds == "no" {
			out = append(out, f.Name)
		}
	}
	return out
}

// writeReport writes the file docs/development.md's Performance section quotes.
func writeReport(w io.Writer, m Machine, figs []Figure, notes []string, took time.Duration) {
	fmt.Fprintf(w, "# Benchmarks\n\n")
	fmt.Fprintf(w, "Written by `make bench` (scripts/bench) on %s: %d cores (%s), %.1f GB of memory, %s, commit %s; the run took %s,\n",
		m.Date.Format("2006-01-02 15:04 MST"), m.Cores, m.CPU, m.MemoryGB, m.Go, m.Commit, took.Round(time.Second))
	fmt.Fprintf(w, "with a load average of %s at its start and %s at its end.\n", m.Load[0], m.Load[1])
	fmt.Fprintf(w, "Everything runs on this one machine over loopback, the load generator included: ratios compare runs\n"+
		"interleaved in the same minute; absolute times are indicative only on a shared machine.\n\n")
	w.Write([]byte(table(figs)))
	if len(notes) > 0 {
		fmt.Fprintf(w, "\n")
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
	if ms := missed(figs); len(ms) > 0 {
		fmt.Fprintf(w, "\nMissed: %s.\n", strings.Join(ms, "; "))
	}
}

// ms formats a duration in milliseconds with a precision that suits it.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 1000:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.2f s", v/1000)
	}
}

// median and percentile of durations (the slice is sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

func medianFloat(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
