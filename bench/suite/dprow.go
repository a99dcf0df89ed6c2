package main

// dpRow is one row of the data path's table: a datapath.Result.
type dpRow struct {
	Case             string
	Addresses        int
	PacketsPerSecond float64
	Spread           float64
}
