package main

import (
	"os"

	"github.com/ipacct/ipacct_exporter/bench/datapath"
)

// dpRow is one row of the data path's table: a datapath.Result.
type dpRow struct {
	Case             string
	Addresses        int
	PacketsPerSecond float64
	Spread           float64
}

// runDatapath runs the data path benchmark of package bench/datapath
// (-datapath).
func runDatapath() ([]dpRow, error) {
	res, err := datapath.Run(datapath.Options{Log: os.Stderr})
	rows := make([]dpRow, 0, len(res))
	for _, r := range res {
		rows = append(rows, dpRow{Case: r.Case, Addresses: r.Addresses, PacketsPerSecond: r.PacketsPerSecond, Spread: r.Spread})
	}
	return rows, err
}
