// Package secret provides a string type for credentials that cannot print
// itself: formatting, JSON encoding and slog all see a redaction marker, so a
// secret that reaches a log line or a response by mistake leaks nothing.
package secret

import (
	"fmt"
	"log/slog"
)

// Redacted is what a Secret shows wherever it is printed or encoded.
const Redacted = "[REDACTED]"

// Secret holds a credential. Call Reveal to get the value, and only where the
// value must leave the process (an Authorization header, a container's env).
type Secret struct{ v string }

// New wraps s.
func New(s string) Secret { return Secret{v: s} }

// Reveal returns the plain value.
func (s Secret) Reveal() string { return s.v }

// Empty reports whether the secret holds no value.
func (s Secret) Empty() bool { return s.v == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter, so every verb (%s, %v, %q, %x, %d...) redacts.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }
