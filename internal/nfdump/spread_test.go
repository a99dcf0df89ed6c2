package nfdump

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestSpreadRunsEveryJobOnce(t *testing.T) {
	for _, c := range []struct{ sockets, jobs int }{{1, 5}, {4, 1}, {3, 100}, {4, 0}} {
		sockets := make([]int, c.sockets)
		for i := range sockets {
			sockets[i] = i
		}
		var mu sync.Mutex
		ran := make([]int, c.jobs)
		used := map[int]bool{}
		err := Spread(sockets, c.jobs, func(s, i int) error {
			mu.Lock()
			defer mu.Unlock()
			ran[i]++
			used[s] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range ran {
			if n != 1 {
				t.Errorf("%d sockets, %d jobs: job %d ran %d times", c.sockets, c.jobs, i, n)
			}
		}
		if len(used) > min(c.sockets, c.jobs) {
			t.Errorf("%d sockets, %d jobs: %d sockets used", c.sockets, c.jobs, len(used))
		}
	}
}

func TestSpreadStopsAtTheFirstFailure(t *testing.T) {
	// One socket runs the jobs in order: none starts after job 2 fails.
	var ran []int
	err := Spread([]int{0}, 6, func(_, i int) error {
		ran = append(ran, i)
		if i >= 2 {
			return fmt.Errorf("job %d", i)
		}
		return nil
	})
	if err == nil || err.Error() != "job 2" || len(ran) != 3 {
		t.Errorf("got %v after jobs %v, want job 2's error after jobs 0 to 2", err, ran)
	}

	// Several sockets: of the jobs that failed, the lowest numbered's
	// error, whichever finished first.
	var release sync.WaitGroup
	release.Add(1)
	errFirst := errors.New("job 1")
	err = Spread([]int{0, 1}, 2, func(_, i int) error {
		if i == 1 {
			defer release.Done()
			return errFirst // job 1 fails first ...
		}
		release.Wait()
		return errors.New("job 0") // ... job 0 after it
	})
	if err == nil || err.Error() != "job 0" {
		t.Errorf("got %v, want job 0's error", err)
	}
}

func TestSockets(t *testing.T) {
	if n := Sockets(); n < 1 || n > maxSockets {
		t.Errorf("Sockets() = %d, want 1 to %d", n, maxSockets)
	}
}
