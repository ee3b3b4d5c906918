package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine is where the numbers were taken.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"` // runtime.NumCPU
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	GOMAXPROCS []int  `json:"gomaxprocs"`
	Date       string `json:"date"` // UTC, RFC 3339
	Hostname   string `json:"hostname,omitempty"`
}

func machine(procs []int, start time.Time) Machine {
	host, _ := os.Hostname()
	return Machine{
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		GOMAXPROCS: procs,
		Date:       start.UTC().Format(time.RFC3339),
		Hostname:   host,
	}
}

// Line is the one-line description the report and README show.
func (m Machine) Line() string {
	var ps []string
	for _, p := range m.GOMAXPROCS {
		ps = append(ps, strconv.Itoa(p))
	}
	return fmt.Sprintf("%s, %d cores, %s %s/%s, GOMAXPROCS %s, %s",
		m.CPU, m.Cores, m.GoVersion, m.OS, m.Arch, strings.Join(ps, ","), m.Date)
}

// cpuModel reads the CPU model from /proc/cpuinfo (Linux), else "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name", "Model", "cpu model", "Processor":
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	return "unknown CPU"
}

// load1 is the 1-minute load average, or -1 where /proc/loadavg is absent.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
