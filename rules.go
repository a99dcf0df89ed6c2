package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/ipacct/ipacct_exporter/config"
	"github.com/ipacct/ipacct_exporter/managed"
)

// checkConfig validates rules.yaml at path (--config.check) and prints the
// table it makes (--config.dry-run), without touching the kernel.
func checkConfig(path string, check, dryRun bool, stdout, stderr io.Writer) int {
	if path == "" {
		fmt.Fprintln(stderr, "--config.check and --config.dry-run need --config.file")
		return 2
	}
	f, rs, err := loadRules(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if dryRun {
		fmt.Fprint(stdout, rs.Text())
	}
	if check {
		fmt.Fprintf(stdout, "%s: valid, %d accounting entries, %d addresses entries\n", path, len(f.Accounting), len(f.Addresses))
	}
	return 0
}

// cleanup deletes the table of rules.yaml at path (inet ipacct when path
// is empty) in the namespace at nsPath ("" for the exporter's own), and
// nothing else.
func cleanup(path, nsPath string, stdout, stderr io.Writer) int {
	table := "ipacct"
	if path != "" {
		f, _, err := loadRules(path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		table = f.Table
	}
	// A running exporter makes its table again: say so. Without one, the
	// claim keeps an exporter from starting on the table meanwhile.
	claim, err := managed.ClaimTable(nsPath, table, "ipacct_exporter cleanup")
	if owner := (*managed.ClaimedError)(nil); errors.As(err, &owner) {
		fmt.Fprintf(stderr, "%s: a running ipacct_exporter manages table inet %s (%s) and will make it again within a second: stop it to remove the table for good\n", name, table, owner.Owner)
	}
	defer claim.Release()
	conn, closeConn, err := managed.Dial(nsPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer closeConn()
	deleted, err := managed.Cleanup(conn, table)
	switch {
	case err != nil:
		fmt.Fprintln(stderr, managed.ExplainPermission(err))
		return 1
	case deleted:
		fmt.Fprintf(stdout, "deleted table inet %s\n", table)
	default:
		fmt.Fprintf(stdout, "no table inet %s: nothing to do\n", table)
	}
	return 0
}

// loadRules loads rules.yaml and builds the table it makes, which finds
// what loading alone does not (such as a set too large for the kernel).
func loadRules(path string) (*config.File, *managed.Ruleset, error) {
	f, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	rs, err := managed.Build(f)
	if err != nil {
		return nil, nil, err
	}
	return f, rs, nil
}
