package ami

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/callevents/callevents"
)

// Limits of one AMI message: longer lines or bigger blocks are skipped as
// malformed, so a broken peer cannot make the reader grow without bound.
const (
	maxLineLength   = 16 << 10
	maxBlockFields  = 512
	maxPendingBytes = 256 << 10
)

// field is one "Key: Value" line of a message; keys may repeat.
type field struct{ key, value string }

// message is one AMI block: the fields in the order received.
type message []field

// get returns the first value of key (case-insensitive), "" when absent.
func (m message) get(key string) string {
	for _, f := range m {
		if strings.EqualFold(f.key, key) {
			return f.value
		}
	}
	return ""
}

// has reports whether key is present.
func (m message) has(key string) bool {
	for _, f := range m {
		if strings.EqualFold(f.key, key) {
			return true
		}
	}
	return false
}

// errMalformed marks a block that is not "Key: Value" lines; the reader has
// consumed it and the next call reads the next block.
var errMalformed = errors.New("malformed AMI block")

// reader reads AMI blocks: "Key: Value\r\n" lines ended by an empty line.
type reader struct {
	br *bufio.Reader
}

func newReader(r io.Reader) *reader { return &reader{br: bufio.NewReaderSize(r, maxLineLength)} }

// readLine returns one line without its line ending; tooLong is set (and
// the rest of the line discarded) when it exceeds maxLineLength.
func (r *reader) readLine() (line string, tooLong bool, err error) {
	b, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.br.ReadSlice('\n')
		}
		if err != nil {
			return "", true, err
		}
		return "", true, nil
	}
	if err != nil {
		if err == io.EOF && len(b) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return "", false, err
	}
	return strings.TrimRight(string(b), "\r\n"), false, nil
}

// readBanner reads the greeting line ("Asterisk Call Manager/11.0.0").
func (r *reader) readBanner() (string, error) {
	line, _, err := r.readLine()
	if err != nil {
		return "", err
	}
	if !strings.Contains(line, "Call Manager") {
		return line, fmt.Errorf("not an AMI greeting: %q", callevents.Truncate(line, 80))
	}
	return line, nil
}

// readMessage reads the next non-empty block. A malformed block is
// consumed whole and reported as an error wrapping errMalformed; other
// errors are the connection's.
func (r *reader) readMessage() (message, error) {
	var m message
	var bad string
	size := 0
	for {
		line, tooLong, err := r.readLine()
		if err != nil {
			return nil, err
		}
		if line == "" && !tooLong {
			if bad != "" {
				return nil, fmt.Errorf("%w: %s", errMalformed, bad)
			}
			if len(m) == 0 {
				continue // stray empty line between blocks
			}
			return m, nil
		}
		if bad != "" {
			continue
		}
		size += len(line)
		switch {
		case tooLong:
			bad = "line too long"
		case len(m) >= maxBlockFields || size > maxPendingBytes:
			bad = "block too big"
		default:
			k, v, ok := strings.Cut(line, ":")
			k = strings.TrimSpace(k)
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				bad = fmt.Sprintf("line %q is not \"Key: Value\"", callevents.Truncate(line, 80))
				continue
			}
			m = append(m, field{key: k, value: strings.TrimSpace(v)})
		}
	}
}

// writeAction writes one action block.
func writeAction(w io.Writer, fields ...field) error {
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(f.key)
		b.WriteString(": ")
		b.WriteString(strings.NewReplacer("\r", "", "\n", "").Replace(f.value))
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	_, err := io.WriteString(w, b.String())
	return err
}
