package nfdump

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// maxSockets bounds the sockets of a read, whatever the cores.
const maxSockets = 4

// Sockets is how many sockets a read opens to dump several tables, or
// several sets' elements, at once: one per core the Go runtime uses, at
// most maxSockets. The kernel walks a table or set for a dump in the
// thread that receives it, so two sockets on two cores take half the time
// of one.
func Sockets() int { return min(runtime.GOMAXPROCS(0), maxSockets) }

// Spread runs jobs 0 to n-1 on the sockets, each socket in a goroutine of
// its own running one job at a time, the jobs taken in the order of their
// numbers. It returns the error of the job of the lowest number that
// failed; after a failure no job starts. A socket is a *Conn or anything
// that holds one.
func Spread[S any](sockets []S, n int, job func(s S, i int) error) error {
	errs := make([]error, n)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, s := range sockets[:min(len(sockets), n)] {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if errs[i] = job(s, i); errs[i] != nil {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
