package callevents_test

import (
	"testing"

	"github.com/callevents/callevents"
)

// Ensure Truncate cuts between characters, marks the cut, and still cuts
// text that is not UTF-8.
func TestTruncate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 8, "short"},
		{"exactly8", 8, "exactly8"},
		{"abcdefghij", 4, "abcd…"},
		{"abcé", 4, "abc…"},                          // é is 2 bytes: not cut in two
		{"ab✓cd", 3, "ab…"},                          // ✓ is 3 bytes
		{"ab😀", 5, "ab…"},                            // 😀 is 4 bytes
		{"\xff\xff\xff\xff\xff\xff", 2, "\xff\xff…"}, // not UTF-8: cut at n
	} {
		if got := callevents.Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// Ensure the input of Add and Edit is normalized and validated in the
// root: the URL trimmed, an empty one missing (117), each set field
// checked with its code, and FieldCode naming the same codes.
func TestCallEventUpdateRules(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	if got := *(callevents.CallEventUpdate{URL: str(" \thttp://h.example/x\n")}.Normalize().URL); got != "http://h.example/x" {
		t.Errorf("Normalize: URL %q", got)
	}
	bad := callevents.Method(7)
	badStatus := callevents.Status(2)
	for _, tc := range []struct {
		name  string
		upd   callevents.CallEventUpdate
		field string
		want  callevents.Code
	}{
		{"nothing", callevents.CallEventUpdate{}, "", 0},
		{"empty-url", callevents.CallEventUpdate{URL: str("  ")}.Normalize(), "url", callevents.CodeMissingParameter},
		{"method", callevents.CallEventUpdate{Method: &bad}, "method", callevents.CodeMethodInvalid},
		{"url", callevents.CallEventUpdate{URL: str("ftp://h/")}, "url", callevents.CodeURLInvalid},
		{"status", callevents.CallEventUpdate{Status: &badStatus}, "status", callevents.CodeStatusInvalid},
		{"secret", callevents.CallEventUpdate{Secret: str("short")}, "secret", callevents.CodeSecretInvalid},
		{"secret-removed", callevents.CallEventUpdate{Secret: str("")}, "", 0},
	} {
		if got := callevents.ErrorCode(tc.upd.Validate(), 0); got != tc.want {
			t.Errorf("%s: code %d, want %d", tc.name, got, tc.want)
		}
		if tc.field != "" && tc.want != callevents.CodeMissingParameter && callevents.FieldCode(tc.field) != tc.want {
			t.Errorf("FieldCode(%q) = %d, want %d", tc.field, callevents.FieldCode(tc.field), tc.want)
		}
	}
	if got := callevents.ErrorCode(callevents.EventType(5).Validate(), 0); got != callevents.CodeTypeInvalid {
		t.Errorf("EventType(5).Validate: code %d", got)
	}
	if got := callevents.FieldCode("hasSecret"); got != callevents.CodeMalformedRequest {
		t.Errorf("FieldCode of an unknown field: %d", got)
	}
}
