// Next-slot timing for robfig/cron v3, the Go library behind most Go schedulers, on the same
// expressions, zones and walk as Belfry's NextSlotTimer, for compare-robfig.sh.
//
// Build (GOPATH mode, with Debian's golang-github-robfig-cron-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o robfig-next main.go
package main

import (
	"fmt"
	"os"
	"sort"
	"time"

	cron "github.com/robfig/cron"
)

// proxy is what robfig times when it cannot parse the expression itself: v3 has no `L`, so the
// last-day-of-month case is timed as the first day of the month, which fires at the same rate.
var cases = []struct{ expression, zone, proxy string }{
	{"*/15 * * * *", "UTC", ""},
	{"30 2 * * *", "America/New_York", ""},
	{"0 9 * * 1-5", "Europe/Berlin", ""},
	{"*/5 9-17 * * 1-5", "America/Los_Angeles", ""},
	{"0 0 L * *", "Australia/Lord_Howe", "0 0 1 * *"},
}

const (
	batches   = 15
	batchSize = 100000
)

func main() {
	start := time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z
	end := time.Unix(2082758400, 0)   // 2036-01-01T00:00:00Z
	for _, c := range cases {
		timed := c.expression
		if c.proxy != "" {
			timed = c.proxy
		}
		schedule, err := cron.ParseStandard("CRON_TZ=" + c.zone + " " + timed)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", timed, err)
			os.Exit(1)
		}
		loc, _ := time.LoadLocation(c.zone)
		var samples []float64
		t := start.In(loc)
		for b := 0; b < batches; b++ {
			began := time.Now()
			for i := 0; i < batchSize; i++ {
				t = schedule.Next(t)
				if !t.Before(end) {
					t = start.In(loc)
				}
			}
			samples = append(samples, float64(time.Since(began).Nanoseconds())/batchSize)
		}
		sort.Float64s(samples)
		fmt.Printf("%s\t%s\t%.1f\t%s\n", c.expression, c.zone, samples[len(samples)/2], timed)
	}
	os.Exit(0)
}
