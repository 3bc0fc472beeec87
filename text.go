package callevents

import "unicode/utf8"

// Truncate shortens s to at most n bytes for a message, marking the cut
// with "…". It cuts between characters: a character cut in two would show
// as \x escapes in a %q (or as U+FFFD in a SOAP fault). It steps back at
// most utf8.UTFMax-1 bytes, so text that is not UTF-8 anyway (a path
// segment may unescape to anything) is still cut at n and shown, escaped.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut > n-(utf8.UTFMax-1) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = n
	}
	return s[:cut] + "…"
}
