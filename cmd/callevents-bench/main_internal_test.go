package main

import (
	"context"
	"crypto/sha256"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary be the service process too: the bench
// starts its own executable again with serviceEnv set.
func TestMain(m *testing.M) {
	if env, ok := os.LookupEnv(serviceEnv); ok {
		os.Exit(serviceMain(context.Background(), env, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// Ensure the CPU time read from /proc agrees with the kernel's own account
// of this process (getrusage), within the 10 ms tick of /proc.
func TestProcessCPU(t *testing.T) {
	deadline := selfCPU() + 200*time.Millisecond
	for n := 0; selfCPU() < deadline; n++ { // burn CPU time
		_ = sha256.Sum256([]byte{byte(n)})
	}
	before := selfCPU()
	got, err := processCPU(os.Getpid())
	after := selfCPU()
	if err != nil {
		t.Fatal(err)
	}
	if got < before-20*time.Millisecond || got > after+20*time.Millisecond {
		t.Errorf("processCPU = %v, getrusage says %v…%v", got, before, after)
	}
}
