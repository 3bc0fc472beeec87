package ami

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the AMI reader: it must never panic
// or hang, every block it returns has keys without spaces, and it stops at
// the end of the input. The seeds are the recorded Asterisk transcripts.
func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.ami")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Asterisk Call Manager/11.0.0\r\nEvent: Hangup\r\nKey without colon\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReader(bytes.NewReader(data))
		r.readBanner()
		for i := 0; i < len(data)+2; i++ {
			m, err := r.readMessage()
			if err != nil {
				if errors.Is(err, errMalformed) {
					continue
				}
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					return
				}
				return
			}
			for _, fl := range m {
				if fl.key == "" || bytes.ContainsAny([]byte(fl.key), " \t") {
					t.Fatalf("block with key %q", fl.key)
				}
			}
		}
		t.Fatalf("the reader returned more blocks than the input has bytes")
	})
}
