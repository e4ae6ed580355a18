// Package pause stops the process at a named point when a test asks for
// it, so that the test can kill it exactly there (a crash at a chosen
// moment, made deterministic). RELOCATE_TEST_PAUSE=NAME pauses the first
// time NAME is reached, NAME#N the N-th time; the process says so on
// stderr ("relocate: paused at NAME") and waits to be killed. Unset, At
// costs one map lookup.
package pause

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Env is the variable that names the point.
const Env = "RELOCATE_TEST_PAUSE"

var (
	once   sync.Once
	point  string
	nth    int
	mu     sync.Mutex
	counts = map[string]int{}
)

func load() {
	v := os.Getenv(Env)
	name, n, ok := strings.Cut(v, "#")
	point, nth = name, 1
	if ok {
		if k, err := strconv.Atoi(n); err == nil && k > 0 {
			nth = k
		}
	}
}

// At pauses here forever if the environment names this point.
func At(name string) {
	once.Do(load)
	if point == "" || name != point {
		return
	}
	mu.Lock()
	counts[name]++
	hit := counts[name] == nth
	mu.Unlock()
	if !hit {
		return
	}
	fmt.Fprintf(os.Stderr, "relocate: paused at %s\n", name)
	for {
		time.Sleep(time.Hour)
	}
}
