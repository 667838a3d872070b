package engine

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/zeppelin-kv/zeppelin/lib/testcluster"
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

// TestSharedTrimsFreeMemory: memory the C allocator holds free in the
// middle of its heaps (as the block cache leaves it when it churns) goes
// back to the OS within a trim interval, where without trims it stays
// resident for good.
func TestSharedTrimsFreeMemory(t *testing.T) {
	const freed = 64 << 20
	s, err := NewShared(SharedOptions{MallocTrimInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Let one trim pass first so that RSS starts from what is in use.
	waitTrims(t, s, 1)
	before := testcluster.ResidentBytes(t, 0)
	release := mallocFragment(freed/(16<<10), 16<<10)
	defer release()
	if grew := testcluster.ResidentBytes(t, 0) - before; grew < freed/2 {
		t.Skipf("the freed chunks left RSS %d bytes higher, want most of %d: the allocator reused earlier free memory", grew, freed)
	}
	trims := s.Stats().MallocTrims
	deadline := time.Now().Add(10 * time.Second)
	for {
		after := testcluster.ResidentBytes(t, 0)
		if after-before < freed/4 && s.Stats().MallocTrims > trims {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RSS still %d bytes above the start after %d trims, with %d bytes freed", after-before, s.Stats().MallocTrims-trims, freed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.MallocTrimTime <= 0 {
		t.Errorf("MallocTrimTime %v after %d trims, want > 0", st.MallocTrimTime, st.MallocTrims)
	}
}

// TestSharedTrimmingOff: a negative interval starts no trimmer.
func TestSharedTrimmingOff(t *testing.T) {
	s, err := NewShared(SharedOptions{MallocTrimInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if s.trimmer != nil {
		t.Error("a trimmer runs with MallocTrimInterval < 0")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func waitTrims(t *testing.T, s *Shared, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().MallocTrims < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d trims after 10 s, want %d", s.Stats().MallocTrims, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
