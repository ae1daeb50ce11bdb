// Package config reads settings from the process environment and reports
// every problem as an *Error naming the variable and what was wrong.
//
// It never logs and never includes a variable's value in an error when the
// variable may hold a secret; callers decide what is secret by which helper
// they use (values are echoed only by the helpers documented to do so).
package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Error is a configuration problem with one environment variable. Callers
// that must tell a configuration error apart from an I/O error use
// errors.As with *Error; the message always names the variable.
type Error struct {
	Variable string // the environment variable, e.g. TARGET_AUTH
	Problem  string // what is wrong, in plain words
	Err      error  // the underlying parse error, if any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("config %s: %s: %v", e.Variable, e.Problem, e.Err)
	}
	return fmt.Sprintf("config %s: %s", e.Variable, e.Problem)
}

func (e *Error) Unwrap() error { return e.Err }

// Env looks a variable up. The zero value reads the process environment.
type Env func(name string) (string, bool)

// Lookup returns the trimmed value of name and whether it was set and
// non-empty.
func (e Env) Lookup(name string) (string, bool) {
	f := e
	if f == nil {
		f = os.LookupEnv
	}
	v, ok := f(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// Map is an Env backed by a map, for tests and local runs.
func Map(m map[string]string) Env {
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

// String returns name's value, or def when unset.
func (e Env) String(name, def string) string {
	if v, ok := e.Lookup(name); ok {
		return v
	}
	return def
}

// Required returns name's value or an *Error saying it must be set.
func (e Env) Required(name, what string) (string, error) {
	v, ok := e.Lookup(name)
	if !ok {
		return "", &Error{Variable: name, Problem: "must be set (" + what + ")"}
	}
	return v, nil
}

// List splits a comma-separated value, dropping empty items.
func (e Env) List(name string) []string {
	v, _ := e.Lookup(name)
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// OneOf returns name's value, or def when unset; any value not in allowed
// is an *Error listing the allowed values.
func (e Env) OneOf(name, def string, allowed ...string) (string, error) {
	v := strings.ToLower(e.String(name, def))
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", &Error{Variable: name, Problem: fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", "))}
}

// Bool parses true/false (and 1/0, yes/no), or returns def when unset.
func (e Env) Bool(name string, def bool) (bool, error) {
	v, ok := e.Lookup(name)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on", "enabled":
		return true, nil
	case "false", "0", "no", "off", "disabled":
		return false, nil
	}
	return false, &Error{Variable: name, Problem: fmt.Sprintf("%q is not a boolean (true or false)", v)}
}

// Int parses an integer within [min, max], or returns def when unset.
func (e Env) Int(name string, def, min, max int64) (int64, error) {
	v, ok := e.Lookup(name)
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, &Error{Variable: name, Problem: "not an integer", Err: err}
	}
	if n < min || n > max {
		return 0, &Error{Variable: name, Problem: fmt.Sprintf("%d is outside [%d, %d]", n, min, max)}
	}
	return n, nil
}

// Duration parses a Go duration (e.g. 30s), or returns def when unset.
func (e Env) Duration(name string, def time.Duration) (time.Duration, error) {
	v, ok := e.Lookup(name)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, &Error{Variable: name, Problem: fmt.Sprintf("%q is not a non-negative duration such as 30s", v), Err: err}
	}
	return d, nil
}

// Recording returns an Env that answers from m and adds every name looked
// up to seen. Tests use it to prove which variables a loader reads.
func Recording(m map[string]string, seen map[string]bool) Env {
	return func(name string) (string, bool) {
		seen[name] = true
		v, ok := m[name]
		return v, ok
	}
}
