package engine

import (
	"os"
	"os/exec"
	"testing"
)

// TestSharedKeepsArenaBlocksMapped: once a Shared exists, a memtable arena
// block (4 MiB, an eighth of the default memtable) and anything from 1 MiB
// up is mapped on its own, so that freeing it returns it to the OS — even
// after a larger mapped block was freed, which makes glibc serve such sizes
// from its heaps, where freed memory stays resident.
//
// It runs in a fresh process: the threshold only decides when a heap has
// no free chunk large enough, and other tests leave some behind.
func TestSharedKeepsArenaBlocksMapped(t *testing.T) {
	if os.Getenv("ZP_ENGINE_MALLOC_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSharedKeepsArenaBlocksMapped$", "-test.count=1")
		cmd.Env = append(os.Environ(), "ZP_ENGINE_MALLOC_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	newShared(t)
	mallocChurn(16 << 20) // a freed mapped chunk raises glibc's dynamic threshold
	for _, n := range []int{mmapThreshold, DefaultMemtableSize / 8, 8 << 20} {
		mapped, err := mallocWouldMmap(n)
		if err != nil {
			t.Fatal(err)
		}
		if !mapped {
			t.Errorf("a %d-byte allocation came from the C heap, want it mapped on its own", n)
		}
	}
}
