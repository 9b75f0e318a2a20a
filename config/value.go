package config

import (
	"errors"
	"math"
	"time"

	"go.yaml.in/yaml/v3"
)

// scalarText returns the text of a scalar value node. Empty values and YAML
// nulls (~, null) are errors: nutcracker rejects an empty value, and a null
// is never what a pool key means.
func scalarText(v *yaml.Node) (string, error) {
	if v.Tag == "!!null" {
		return "", badValue(v.Value, "missing value (got %q)", v.Value)
	}
	if v.Value == "" {
		return "", badValue("", "empty value")
	}
	return v.Value, nil
}

// text adapts a setter of a string value to a key setter.
func text(set func(p *Pool, s string) error) func(*poolParse, *yaml.Node) error {
	return func(pp *poolParse, v *yaml.Node) error {
		s, err := scalarText(v)
		if err != nil {
			return err
		}
		return set(pp.pool, s)
	}
}

// flag is the setter of a boolean key: exactly "true" or "false", as in
// nutcracker.
func flag(field func(p *Pool) *bool) func(*poolParse, *yaml.Node) error {
	return text(func(p *Pool, s string) error {
		switch s {
		case "true":
			*field(p) = true
		case "false":
			*field(p) = false
		default:
			return badValue(s, "bad value %q: want true or false", s)
		}
		return nil
	})
}

// count is the setter of a whole-number key whose value must be >= min.
func count(min int, field func(p *Pool) *int) func(*poolParse, *yaml.Node) error {
	return text(func(p *Pool, s string) error {
		n, err := parseNumber(s, min)
		if err != nil {
			return err
		}
		*field(p) = n
		return nil
	})
}

// millis is the setter of a duration key given in milliseconds.
func millis(min int, field func(p *Pool) *time.Duration) func(*poolParse, *yaml.Node) error {
	return text(func(p *Pool, s string) error {
		n, err := parseNumber(s, min)
		if err != nil {
			return err
		}
		*field(p) = time.Duration(n) * time.Millisecond
		return nil
	})
}

// errNotNumber says what a number must look like.
var errNotNumber = errors.New("want a whole number of decimal digits")

// parseNumber parses s the way nutcracker does (decimal digits only, no
// sign), but refuses values nutcracker would silently wrap, and values below
// min.
func parseNumber(s string, min int) (int, error) {
	if s == "" {
		return 0, badValue(s, "bad number %q: %w", s, errNotNumber)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, badValue(s, "bad number %q: %w", s, errNotNumber)
		}
		n = n*10 + int(c-'0')
		if n > math.MaxInt32 {
			return 0, badValue(s, "bad number %q: above the largest value, %d", s, math.MaxInt32)
		}
	}
	if n < min {
		return 0, badValue(s, "bad number %q: must be at least %d", s, min)
	}
	return n, nil
}
