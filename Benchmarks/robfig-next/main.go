// `belfry next EXPR --timezone ZONE --after AFTER --count N` done with robfig/cron v3, for
// compare-robfig.sh to time both as whole processes: the same slots printed the same way, one
// line each (the instant in UTC, then the local time with its offset and abbreviation).
//
// Build (GOPATH mode, with Debian's golang-github-robfig-cron-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o robfig-next main.go
//
// Usage: robfig-next EXPR ZONE AFTER COUNT      e.g. robfig-next '30 2 * * *' America/New_York 2026-01-01T00:00:00Z 50000
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"

	cron "github.com/robfig/cron"
)

// check ends the program on a bad argument, as belfry does (exit 2).
func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: robfig-next EXPR ZONE AFTER COUNT")
		os.Exit(2)
	}
	schedule, err := cron.ParseStandard("CRON_TZ=" + os.Args[2] + " " + os.Args[1])
	check(err)
	loc, err := time.LoadLocation(os.Args[2])
	check(err)
	after, err := time.Parse(time.RFC3339, os.Args[3])
	check(err)
	count, err := strconv.Atoi(os.Args[4])
	check(err)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	t := after.In(loc)
	for i := 0; i < count; i++ {
		t = schedule.Next(t)
		if t.IsZero() {
			return
		}
		out.WriteString(t.UTC().Format("2006-01-02T15:04:05Z"))
		out.WriteString("  ")
		out.WriteString(t.Format("2006-01-02T15:04:05-07:00 MST"))
		out.WriteByte('\n')
	}
}
