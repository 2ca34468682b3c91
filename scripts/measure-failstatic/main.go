// Command measure-failstatic measures how long a controller takes to decide
// between failing static and fencing itself after its renewals stop, and
// how long before its self-fence deadline the decision lands. It runs the
// controller package's fail-static tests (real etcd members, three
// controllers in one process, mutual TLS between them) -count times with
// the controllers logging at info level, and summarises every verdict they
// logged: the ones that held (quorum lost, quota) and the ones that ruled
// fail static out (a site cut off, a working majority).
//
//	go run ./scripts/measure-failstatic -count 10
//
// It exits with status 1 if any verdict landed after its deadline, 2 when
// the tests could not run or failed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"time"
)

// verdictLine matches a verdict's log line and its two durations.
var verdictLine = regexp.MustCompile(`(failing static \(serving on|fail static ruled out).*"after_last_renewal": "([^"]+)", "decided_before_deadline": "([^"]+)"`)

func main() {
	count := flag.Int("count", 10, "how many times to run each test")
	run := flag.String("run", "TestFailStatic|TestSelfFenceBeforeLeaseExpiry", "the tests to run (go test -run)")
	flag.Parse()

	cmd := exec.Command("go", "test", "-race", "-count", fmt.Sprint(*count), "-run", *run, "-v", "./cmd/zdt/internal/controller/")
	cmd.Env = append(os.Environ(), "ZDT_TEST_LOG=info")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail(err)
	}
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	held, ruledOut := read(out)
	if err := cmd.Wait(); err != nil {
		fail(fmt.Errorf("the tests failed: %w", err))
	}
	late := summarise("held (failed static)", held)
	late += summarise("ruled out (fenced as before)", ruledOut)
	if late > 0 {
		fmt.Printf("%d verdicts landed after their deadline\n", late)
		os.Exit(1)
	}
}

type verdict struct{ after, before time.Duration }

func read(r io.Reader) (held, ruledOut []verdict) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := verdictLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		after, err1 := time.ParseDuration(m[2])
		before, err2 := time.ParseDuration(m[3])
		if err1 != nil || err2 != nil {
			continue
		}
		v := verdict{after, before}
		if m[1] == "fail static ruled out" {
			ruledOut = append(ruledOut, v)
		} else {
			held = append(held, v)
		}
	}
	return held, ruledOut
}

// summarise prints p50, p95 and max of both durations and returns how many
// verdicts came after their deadline.
func summarise(what string, vs []verdict) int {
	if len(vs) == 0 {
		fmt.Printf("%s: none\n", what)
		return 0
	}
	var after, before []time.Duration
	late := 0
	for _, v := range vs {
		after, before = append(after, v.after), append(before, v.before)
		if v.before <= 0 {
			late++
		}
	}
	slices.Sort(after)
	slices.Sort(before)
	fmt.Printf("%s: %d verdicts\n", what, len(vs))
	fmt.Printf("  after the last renewal that counted: p50 %s  p95 %s  max %s\n", pct(after, 50), pct(after, 95), after[len(after)-1])
	fmt.Printf("  before the self-fence deadline:      p50 %s  95%% at least %s  min %s\n", pct(before, 50), pct(before, 5), before[0])
	return late
}

func pct(s []time.Duration, p int) time.Duration {
	return s[(len(s)-1)*p/100].Round(time.Millisecond)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "measure-failstatic:", err)
	os.Exit(2)
}
