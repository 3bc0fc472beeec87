// Command callevents-bench measures delivery: it starts the service
// (intake, store, dispatcher) in a process of its own, with a webhook
// receiver on loopback in the bench's process, and reports the loopback
// ceiling, sustained deliveries per second, the service's CPU time per
// delivery and the latency from intake to receiver. It is a tool for
// developers, like pgbench, and ships apart from callevents.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/callevents/callevents/cmd/internal/cliflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	var code int
	if env, ok := os.LookupEnv(serviceEnv); ok {
		code = serviceMain(ctx, env, os.Stdin, os.Stdout)
	} else {
		code = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}

// report is what a run measures, printed last as one JSON line.
type report struct {
	Dialect          string  `json:"dialect"`
	CeilingPerSec    float64 `json:"ceilingPerSec"`
	Events           int     `json:"events"`
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
	VersusCeiling    float64 `json:"versusCeiling"`
	// CPUUsPerDelivery is the CPU time (user and system) the service
	// process spent per delivery in the throughput phase: intake, store,
	// claim, send and record.
	CPUUsPerDelivery float64 `json:"cpuUsPerDelivery"`
	// LoadCPUUsPerDelivery is the same for the bench's own process: the
	// intake client and the receiver.
	LoadCPUUsPerDelivery float64 `json:"loadCpuUsPerDelivery"`
	Rate                 int     `json:"rate"`
	// RateCPUUsPerDelivery is the service process's CPU time per delivery
	// in the latency phase, one event per request at a steady rate.
	RateCPUUsPerDelivery float64 `json:"rateCpuUsPerDelivery"`
	RateEvents           int     `json:"rateEvents"`
	P50Ms                float64 `json:"p50Ms"`
	P95Ms                float64 `json:"p95Ms"`
	P99Ms                float64 `json:"p99Ms"`
	MaxMs                float64 `json:"maxMs"`
	// IntakeP99Ms is the p99 of the intake's own answer (send to 202) in the
	// latency phase: the part of the latency spent before delivery starts.
	IntakeP99Ms float64 `json:"intakeP99Ms"`
}

const usage = `usage: callevents-bench [--db DSN] [flags]

Starts the service (intake, store, dispatcher) in a process of its own,
with --extensions Dial-In Call Events to a receiver on loopback in this
process, and measures, in one run:
  ceiling     a plain Go client posting the same form to the same receiver
  throughput  deliveries per second while --events are reported at once,
              in batches of --batch, and the service process's CPU time
              per delivery (/proc/<pid>/stat)
  latency     from the intake request to the receiver, at a steady --rate
Without --db it uses a fresh SQLite file in a temporary folder. A MySQL DSN
must name a scratch database: the bench adds its own clients and Call Events.
Every flag can also be set as CALLEVENTS_<FLAG>, as for callevents.
`

// options are the flags.
type options struct {
	dsn, cpuProfile, rateProfile string
	events, batch, extensions    int
	rate, concurrency            int
	rateFor, ceilingFor          time.Duration
}

// flagSet declares the flags into o.
func (o *options) flagSet(stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("callevents-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); cliflag.PrintDefaults(fs) }
	fs.StringVar(&o.dsn, "db", "", "database (default: a temporary SQLite file)")
	cliflag.Int(fs, &o.events, "events", 20000, 1, "", "events reported at once for the throughput phase")
	cliflag.Int(fs, &o.batch, "batch", 100, 1, "", "events per intake request in the throughput phase")
	cliflag.Int(fs, &o.extensions, "extensions", 100, 1, "", "extensions called, each with one Dial-In Call Event to the receiver")
	cliflag.Int(fs, &o.rate, "rate", 1000, 1, "", "events per second in the latency phase")
	cliflag.Duration(fs, &o.rateFor, "rate-duration", 10*time.Second, "length of the latency phase")
	cliflag.Duration(fs, &o.ceilingFor, "ceiling-duration", 3*time.Second, "length of the ceiling phase")
	cliflag.Int(fs, &o.concurrency, "concurrency", 0, 0, "128", "dispatcher concurrency (0: the default)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the service process in the throughput phase to this file")
	fs.StringVar(&o.rateProfile, "rate-cpuprofile", "", "write a CPU profile of the service process in the latency phase to this file")
	return fs
}

// run runs the bench and returns the process exit code: 2 for a bad flag,
// 1 when the bench failed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := bench(ctx, args, stdout, stderr)
	if err != nil && err != cliflag.ErrUsage { // the flag package has printed why
		fmt.Fprintln(stderr, "callevents-bench:", err)
	}
	return cliflag.ExitCode(err)
}

// bench runs the three phases and prints a table and a JSON line.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	if err := cliflag.Parse(o.flagSet(stderr), args); err != nil {
		return err
	}
	dsn := o.dsn
	if dsn == "" {
		dir, err := os.MkdirTemp("", "callevents-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dsn = "sqlite:" + filepath.Join(dir, "bench.db")
	}
	r, err := startRig(ctx, dsn, o.concurrency, o.extensions)
	if err != nil {
		return err
	}
	defer r.close()

	rep := report{Dialect: r.dialect, Events: o.events, Rate: o.rate}
	fmt.Fprintf(stderr, "bench: ceiling for %v …\n", o.ceilingFor)
	rep.CeilingPerSec = r.ceiling(ctx, o.ceilingFor, r.concurrency)
	fmt.Fprintf(stderr, "bench: %d events at once …\n", o.events)
	loadBefore := selfCPU()
	burstCPU, err := r.measure(o.cpuProfile, func() (err error) {
		rep.DeliveriesPerSec, err = r.throughput(ctx, o.events, o.batch)
		return err
	})
	if err != nil {
		return err
	}
	rep.LoadCPUUsPerDelivery = float64((selfCPU() - loadBefore).Microseconds()) / float64(o.events)
	rep.CPUUsPerDelivery = float64(burstCPU.Microseconds()) / float64(o.events)
	rep.VersusCeiling = rep.DeliveriesPerSec / rep.CeilingPerSec
	fmt.Fprintf(stderr, "bench: %d events/s for %v …\n", o.rate, o.rateFor)
	var lat, intake []time.Duration
	steadyCPU, err := r.measure(o.rateProfile, func() (err error) {
		lat, intake, err = r.latency(ctx, o.rate, o.rateFor)
		return err
	})
	if err != nil {
		return err
	}
	rep.RateCPUUsPerDelivery = float64(steadyCPU.Microseconds()) / float64(len(lat))
	rep.IntakeP99Ms = percentileMs(intake, 0.99)
	rep.RateEvents = len(lat)
	rep.P50Ms, rep.P95Ms, rep.P99Ms, rep.MaxMs = percentileMs(lat, 0.50), percentileMs(lat, 0.95), percentileMs(lat, 0.99), percentileMs(lat, 1)

	fmt.Fprintf(stdout, "store %s, dispatcher concurrency %d\n", rep.Dialect, r.concurrency)
	fmt.Fprintf(stdout, "  loopback ceiling      %8.0f requests/s\n", rep.CeilingPerSec)
	fmt.Fprintf(stdout, "  sustained deliveries  %8.0f /s  (%.2f× the ceiling, %d events)\n", rep.DeliveriesPerSec, rep.VersusCeiling, rep.Events)
	fmt.Fprintf(stdout, "  CPU per delivery      %8.0f µs  (the service process; the load and receiver took %.0f µs)\n", rep.CPUUsPerDelivery, rep.LoadCPUUsPerDelivery)
	fmt.Fprintf(stdout, "  latency at %d/s       p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms  (%d events; intake alone p99 %.1f ms)\n", rep.Rate, rep.P50Ms, rep.P95Ms, rep.P99Ms, rep.MaxMs, rep.RateEvents, rep.IntakeP99Ms)
	fmt.Fprintf(stdout, "  CPU per delivery at %d/s %5.0f µs  (the service process, one event per request)\n", rep.Rate, rep.RateCPUUsPerDelivery)
	return json.NewEncoder(stdout).Encode(rep)
}

// selfCPU is the CPU time, user and system, this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTicks is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on
// every Linux architecture Go supports).
const clockTicks = 100

// processCPU is the CPU time, user and system, process pid has used, read
// from /proc/<pid>/stat as an outside observer would.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("the service's CPU time: %w", err)
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// fields count from after its closing one (utime is field 14, stime 15).
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("the service's CPU time: /proc/%d/stat has %d fields", pid, len(fields)+2)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("the service's CPU time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
