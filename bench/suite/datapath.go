package main

import (
	"os"

	"github.com/ipacct/ipacct_exporter/bench/datapath"
)

// runDatapath runs the data path benchmark of package bench/datapath
// (-datapath), which another change owns.
func runDatapath() ([]dpRow, error) {
	res, err := datapath.Run(datapath.Options{Log: os.Stderr})
	rows := make([]dpRow, 0, len(res))
	for _, r := range res {
		rows = append(rows, dpRow{Case: r.Case, Addresses: r.Addresses, PacketsPerSecond: r.PacketsPerSecond, Spread: r.Spread})
	}
	return rows, err
}
