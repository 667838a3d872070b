package cmd

import (
	"os"
	"testing"
)

func TestDevNullIsNotATerminal(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f)() {
		t.Errorf("%s counted as a terminal: zpctl would ask for confirmation on it", os.DevNull)
	}
}
