package gen_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Ensure the committed output is exactly what the pinned gowsdl makes of the
// WSDL today: a WSDL change without `go generate ./gen`, or a hand edit of
// gen/, fails here.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("go", "tool", "gowsdl", "-d", dir, "-p", "gen", "-o", "phonecallevents.go", "../wsdl/PhoneCallEvents.wsdl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gowsdl: %v\n%s", err, out)
	}
	fresh, err := os.ReadFile(filepath.Join(dir, "gen", "phonecallevents.go"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("phonecallevents.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Fatal("gen/phonecallevents.go differs from what gowsdl generates from wsdl/PhoneCallEvents.wsdl: run `go generate ./gen` and commit the result")
	}
}
