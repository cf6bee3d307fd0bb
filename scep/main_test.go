package scep_test

import (
	"flag"
	"os"
	"testing"
)

// defaultMinimizeTime bounds how long the fuzzing engine minimizes each new
// interesting input (and a crasher). Go's default is 60 s; a real
// pkiMessage is ~3 KB and each run parses and verifies it, so with the
// default a 15 s CI run of FuzzParsePKIMessage or FuzzPKIOperation spends
// all its time minimizing the first finds: measured, under 50 executions
// instead of thousands. An explicit -test.fuzzminimizetime still wins.
const defaultMinimizeTime = "250ms"

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.fuzzminimizetime" })
	if !explicit {
		if err := flag.Set("test.fuzzminimizetime", defaultMinimizeTime); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
