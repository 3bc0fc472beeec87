package main

import (
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/service/ami"
)

// The typed flags below check a value when it is set, but keep the
// complaint instead of returning it: the flag package would word it
// itself ("invalid value … for flag -lease: parse error") and dump the
// usage, and could not say whether the value came from --lease or from
// CALLEVENTS_LEASE. parseFlags reports it under the name it came in by,
// with the bad value and one that would work:
//
//	--lease: "60" is not a duration; write 60s

// badValue is the complaint about one value: what is wrong with bad (the
// value, or the item of a list) and an example of a good one.
type badValue struct {
	bad, what, example string
}

// message words the complaint for name, a --flag or a CALLEVENTS_ variable.
func (b *badValue) message(name string) string {
	return fmt.Sprintf("%s: %q %s; write %s", name, b.bad, b.what, b.example)
}

// checkedValue is a flag.Value that keeps the complaint about its last Set
// (nil when that value was good).
type checkedValue interface {
	flag.Value
	complaint() *badValue
	kind() string // what -h calls the value: duration, number, list, …
}

// flagError is a bad flag or variable value: exit code 2, like a usage
// error, but with its own message.
type flagError struct{ msg string }

func (e *flagError) Error() string { return e.msg }

// durationValue is a non-negative time.Duration flag.
type durationValue struct {
	p       *time.Duration
	example string
	bad     *badValue
}

func durationVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
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
		v.bad = &badValue{s, "is not a duration", example}
	case d < 0:
		v.bad = &badValue{s, "is negative", v.example}
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

func (v *durationValue) complaint() *badValue { return v.bad }
func (v *durationValue) kind() string         { return "duration" }

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
	bad     *badValue
}

// intVar declares an intValue; its complaints suggest the default, or
// example when the default (0: automatic) would teach nothing.
func intVar(fs *flag.FlagSet, p *int, name string, value, min int, example, usage string) {
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
		v.bad = &badValue{s, "is not a whole number", v.example}
	case n < v.min:
		v.bad = &badValue{s, fmt.Sprintf("is less than %d", v.min), v.example}
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

func (v *intValue) complaint() *badValue { return v.bad }
func (v *intValue) kind() string         { return "number" }

// boolValue is a true/false flag; --name alone means true.
type boolValue struct {
	p   *bool
	bad *badValue
}

func boolVar(fs *flag.FlagSet, p *bool, name string, value bool, usage string) {
	*p = value
	fs.Var(&boolValue{p: p}, name, usage)
}

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		v.bad = &badValue{s, "is neither true nor false", "true or false"}
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

func (v *boolValue) IsBoolFlag() bool     { return true }
func (v *boolValue) complaint() *badValue { return v.bad }
func (v *boolValue) kind() string         { return "" }

// textValue is a string flag whose value check accepts: a comma-separated
// list (check names its first bad item) or a word from a short list.
type textValue struct {
	p     *string
	what  string // "list" or "string", for -h
	check func(string) *badValue
	bad   *badValue
}

// listVar declares a comma-separated list flag that check accepts.
func listVar(fs *flag.FlagSet, p *string, name, value string, check func(string) *badValue, usage string) {
	*p = value
	fs.Var(&textValue{p: p, what: "list", check: check}, name, usage)
}

// textVar declares a string flag that check accepts.
func textVar(fs *flag.FlagSet, p *string, name, value string, check func(string) *badValue, usage string) {
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

func (v *textValue) complaint() *badValue { return v.bad }
func (v *textValue) kind() string         { return v.what }

// printDefaults is flag.PrintDefaults, but names the kind of each typed
// flag (duration, number, list) where the flag package would say "value".
func printDefaults(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		def := f.DefValue
		switch v := f.Value.(type) {
		case checkedValue:
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

// listItems returns the non-empty, trimmed items of a comma-separated list.
func listItems(list string) []string {
	var items []string
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// oneOf checks that a value is one of words (what names what they are).
func oneOf(what string, words ...string) func(string) *badValue {
	example := strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
	return func(s string) *badValue {
		for _, w := range words {
			if s == w {
				return nil
			}
		}
		return &badValue{s, "is not " + what, example}
	}
}

// checkAllowTargets checks --allow-targets item by item, with the rules of
// dispatcher.ParseAllowTargets.
func checkAllowTargets(list string) *badValue {
	const example = "10.0.0.0/8,192.168.1.10,crm.internal,*.example.com"
	for _, item := range listItems(list) {
		if _, err := dispatcher.ParseAllowTargets(item); err != nil {
			what := "is neither an IP address nor a host name (a leading *. is the only wildcard)"
			if strings.Contains(item, "/") {
				what = "is not a CIDR"
			}
			return &badValue{item, what, example}
		}
	}
	return nil
}

// checkTrustedProxies checks --trusted-proxies item by item.
func checkTrustedProxies(list string) *badValue {
	for _, item := range listItems(list) {
		if _, err := parseTrustedProxies(item); err != nil {
			return &badValue{item, "is neither a CIDR nor an IP address", "10.0.0.5,192.168.0.0/24"}
		}
	}
	return nil
}

// checkAMIMap checks --ami-map (--map of ami) item by item, and that no
// endpoint is mapped twice.
func checkAMIMap(list string) *badValue {
	const example = "210=0003*210,alice=0003*211"
	seen := map[string]bool{}
	for _, item := range listItems(list) {
		if _, err := ami.ParseExtensionMap("", item); err != nil {
			return &badValue{item, "is not endpoint=extended number", example}
		}
		ep, _, _ := strings.Cut(item, "=")
		if ep = strings.TrimSpace(ep); seen[ep] {
			return &badValue{item, "maps endpoint " + strconv.Quote(ep) + " a second time", example}
		}
		seen[ep] = true
	}
	return nil
}

// didPattern is a public number as Asterisk's Exten shows it.
var didPattern = regexp.MustCompile(`^\+?[0-9]{1,32}$`)

// checkDIDs checks --ami-dids (--dids of ami) item by item.
func checkDIDs(list string) *badValue {
	for _, item := range listItems(list) {
		if !didPattern.MatchString(item) {
			return &badValue{item, "is not a phone number", "4930123456,+4930123457"}
		}
	}
	return nil
}

// checkOrg checks --ami-org (--org of ami): empty, or 4 digits.
func checkOrg(s string) *badValue {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	if _, err := ami.ParseExtensionMap(s, ""); err != nil {
		return &badValue{s, "is not an organization code", "0003"}
	}
	return nil
}
