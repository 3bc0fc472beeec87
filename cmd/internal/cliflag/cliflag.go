// Package cliflag holds the checked flags that the callevents and
// callevents-bench commands declare, and Parse, which sets each flag from
// its CALLEVENTS_<FLAG> variable first and then from the command line.
//
// A checked flag checks its value when it is set, but keeps the complaint
// instead of returning it: the flag package would word it itself
// ("invalid value … for flag -lease: parse error") and dump the usage, and
// could not say whether the value came from --lease or from
// CALLEVENTS_LEASE. Parse reports it under the name it came in by, with
// the bad value and one that would work:
//
//	--lease: "60" is not a duration; write 60s
package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ErrUsage is a command line the flag package refused; it has printed why
// and the usage.
var ErrUsage = errors.New("usage")

// Error is a bad flag or variable value: exit code 2, like a usage error,
// but with its own message.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// ExitCode is the exit code of a command that returned err: 0 for nil, 2
// for ErrUsage or an *Error, 1 for any other error.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if _, bad := errors.AsType[*Error](err); bad || errors.Is(err, ErrUsage) {
		return 2
	}
	return 1
}

// Complaint is what is wrong with one value: Bad (the value, or the item
// of a list) What-s, and Example would work.
type Complaint struct {
	Bad, What, Example string
}

// message words the complaint for name, a --flag or a CALLEVENTS_ variable.
func (c *Complaint) message(name string) string {
	return fmt.Sprintf("%s: %q %s; write %s", name, c.Bad, c.What, c.Example)
}

// Checked is a flag.Value declared by this package: it keeps the complaint
// about its last Set (nil when that value was good).
type Checked interface {
	flag.Value
	complaint() *Complaint
	kind() string // what -h calls the value: duration, number, list, …
}

// Parse sets each flag of fs from CALLEVENTS_<NAME> first (dashes become
// underscores), then from args, so that command-line flags win over the
// environment. A bad value is an *Error naming the variable or the flag it
// came from; a command line the flag package refuses is ErrUsage.
func Parse(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := EnvName(f.Name)
		v, ok := os.LookupEnv(key)
		if !ok || envErr != nil {
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = fmt.Errorf("%s=%q: %v", key, v, err)
		} else if c, ok := f.Value.(Checked); ok && c.complaint() != nil {
			envErr = &Error{c.complaint().message(key)}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		return ErrUsage // the flag package has printed why
	}
	var flagErr error
	fs.Visit(func(f *flag.Flag) {
		if c, ok := f.Value.(Checked); ok && c.complaint() != nil && flagErr == nil {
			flagErr = &Error{c.complaint().message("--" + f.Name)}
		}
	})
	return flagErr
}

// EnvName is the environment variable of a flag: CALLEVENTS_<NAME>.
func EnvName(flagName string) string {
	return "CALLEVENTS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// durationValue is a non-negative time.Duration flag.
type durationValue struct {
	p       *time.Duration
	example string
	bad     *Complaint
}

// Duration declares a non-negative duration flag; a bare number is refused
// with the unit it lacks.
func Duration(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(&durationValue{p: p, example: durationText(value)}, name, usage)
}

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	switch {
	case err != nil:
		example := v.example + " (a number and a unit: ms, s, m or h)"
		if _, numErr := strconv.ParseFloat(strings.TrimSpace(s), 64); numErr == nil {
			example = strings.TrimSpace(s) + "s" // a bare number: only the unit is missing
		}
		v.bad = &Complaint{s, "is not a duration", example}
	case d < 0:
		v.bad = &Complaint{s, "is negative", v.example}
	default:
		*v.p, v.bad = d, nil
	}
	return nil
}

func (v *durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return durationText(*v.p)
}

func (v *durationValue) complaint() *Complaint { return v.bad }
func (v *durationValue) kind() string          { return "duration" }

// durationText writes d as a person would: 1m rather than 1m0s.
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// intValue is a whole-number flag of at least min.
type intValue struct {
	p       *int
	min     int
	example string
	bad     *Complaint
}

// Int declares a whole-number flag of at least min; its complaints suggest
// the default, or example when the default (0: automatic) would teach
// nothing.
func Int(fs *flag.FlagSet, p *int, name string, value, min int, example, usage string) {
	*p = value
	if example == "" {
		example = strconv.Itoa(max(value, min))
	}
	fs.Var(&intValue{p: p, min: min, example: example}, name, usage)
}

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil:
		v.bad = &Complaint{s, "is not a whole number", v.example}
	case n < v.min:
		v.bad = &Complaint{s, fmt.Sprintf("is less than %d", v.min), v.example}
	default:
		*v.p, v.bad = n, nil
	}
	return nil
}

func (v *intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v *intValue) complaint() *Complaint { return v.bad }
func (v *intValue) kind() string          { return "number" }

// boolValue is a true/false flag; --name alone means true.
type boolValue struct {
	p   *bool
	bad *Complaint
}

// Bool declares a true/false flag; --name alone means true.
func Bool(fs *flag.FlagSet, p *bool, name string, value bool, usage string) {
	*p = value
	fs.Var(&boolValue{p: p}, name, usage)
}

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		v.bad = &Complaint{s, "is neither true nor false", "true or false"}
		return nil
	}
	*v.p, v.bad = b, nil
	return nil
}

func (v *boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

func (v *boolValue) IsBoolFlag() bool      { return true }
func (v *boolValue) complaint() *Complaint { return v.bad }
func (v *boolValue) kind() string          { return "" }

// textValue is a string flag whose value check accepts: a comma-separated
// list (check names its first bad item) or a word from a short list.
type textValue struct {
	p     *string
	what  string // "list" or "string", for -h
	check func(string) *Complaint
	bad   *Complaint
}

// List declares a comma-separated list flag that check accepts.
func List(fs *flag.FlagSet, p *string, name, value string, check func(string) *Complaint, usage string) {
	*p = value
	fs.Var(&textValue{p: p, what: "list", check: check}, name, usage)
}

// Text declares a string flag that check accepts.
func Text(fs *flag.FlagSet, p *string, name, value string, check func(string) *Complaint, usage string) {
	*p = value
	fs.Var(&textValue{p: p, what: "string", check: check}, name, usage)
}

func (v *textValue) Set(s string) error {
	if v.bad = v.check(s); v.bad == nil {
		*v.p = s
	}
	return nil
}

func (v *textValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v *textValue) complaint() *Complaint { return v.bad }
func (v *textValue) kind() string          { return v.what }

// PrintDefaults is flag.PrintDefaults, but names the kind of each checked
// flag (duration, number, list) where the flag package would say "value".
func PrintDefaults(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		def := f.DefValue
		switch v := f.Value.(type) {
		case Checked:
			kind = v.kind()
			if _, text := v.(*textValue); text && def != "" {
				def = strconv.Quote(def)
			}
		default:
			if kind == "string" && def != "" {
				def = strconv.Quote(def)
			}
		}
		line := "  -" + f.Name
		if kind != "" {
			line += " " + kind
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		if def != "" && def != "0" && def != "0s" && def != "false" {
			line += " (default " + def + ")"
		}
		fmt.Fprintln(fs.Output(), line)
	})
}

// Items returns the non-empty, trimmed items of a comma-separated list.
func Items(list string) []string {
	var items []string
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// OneOf checks that a value is one of words (what names what they are).
func OneOf(what string, words ...string) func(string) *Complaint {
	example := strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
	return func(s string) *Complaint {
		for _, w := range words {
			if s == w {
				return nil
			}
		}
		return &Complaint{s, "is not " + what, example}
	}
}
