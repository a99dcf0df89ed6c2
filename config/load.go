package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits. A rules file is written by hand; these keep a mistake (or a
// generator gone wrong) from making the exporter load millions of rules.
const (
	maxFileSize = 4 << 20 // bytes
	maxEntries  = 10000
	maxRules    = 1000 // rules an entry expands to, per direction and hook
	// maxFileRules bounds the rules of the whole table. A scrape dumps a
	// table in time that grows with the square of its rules: on 2 busy
	// cores 50,000 rules took 3 s to apply and 1 to 1.5 s to scrape,
	// 100,000 took 8 s and 3.5 to 5 s, near Prometheus' 10 s timeout.
	// Aliases and long lists make a small file expand to far more: 28 KB,
	// one anchor of 1,000 addresses used in 500 entries, made a million
	// rules and took 4 s and 650 MB to check.
	maxFileRules = 50000
	// maxAliased bounds the YAML values that aliases repeat: each use of an
	// alias copies every value of its anchor again. Without aliases the
	// values are bounded by the file's size.
	maxAliased = 100000
	// maxErrors bounds the problems reported: past it, something else is
	// wrong, such as a file that is not a rules file at all.
	maxErrors = 100
)

// Load reads and validates the rules file at path. See Parse.
func Load(path string) (*File, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	return Parse(path, data)
}

// readTimeout bounds reading a rules file: a file on a network file system
// that stopped answering must not hold up a reload for ever.
const readTimeout = 10 * time.Second

// readFile reads at most maxFileSize+1 bytes (one more than allowed, so
// that Parse sees a file too large) of the regular file at path, within
// readTimeout. Anything else is an error before it is opened for reading:
// opening a FIFO waits for a writer, reading a device may never end.
func readFile(path string) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := readRegular(path)
		done <- result{data, err}
	}()
	select {
	case r := <-done:
		return r.data, r.err
	case <-time.After(readTimeout):
		// The read goes on in the background until the file system answers.
		return nil, fmt.Errorf("not read within %s", readTimeout)
	}
}

func readRegular(path string) ([]byte, error) {
	if err := requireRegular(os.Stat(path)); err != nil {
		return nil, err
	}
	// O_NONBLOCK: should path have become a FIFO since, open does not wait.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := requireRegular(f.Stat()); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, maxFileSize+1))
}

// requireRegular refuses what is not a regular file, naming what it is.
func requireRegular(fi fs.FileInfo, err error) error {
	if err != nil {
		return err
	}
	if m := fi.Mode(); !m.IsRegular() {
		kind := "something else"
		switch {
		case m.IsDir():
			kind = "a directory"
		case m&fs.ModeNamedPipe != 0:
			kind = "a FIFO"
		case m&fs.ModeSocket != 0:
			kind = "a socket"
		case m&fs.ModeDevice != 0:
			kind = "a device"
		}
		return fmt.Errorf("is %s, not a regular file", kind)
	}
	return nil
}

// fileError drops the path that an *fs.PathError repeats, keeping errors.Is.
func fileError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// Parse decodes and validates a rules file; path names it in messages. It
// applies the defaults the types document. When the file is not valid it
// returns every problem found, in file order, one a line, each as
// "PATH:LINE: FIELD: what is wrong".
func Parse(path string, data []byte) (*File, error) {
	errs := &errList{path: path}
	if len(data) > maxFileSize {
		errs.add(0, "", "file is larger than 4 MiB (%d bytes)", maxFileSize)
		return nil, errs.err()
	}
	if line, msg := badCharacter(data); msg != "" {
		errs.add(line, "", "%s", msg)
		return nil, errs.err()
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		errs.addSyntax(data, err)
		return nil, errs.err()
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		errs.addSyntax(data, err)
		return nil, errs.err()
	default:
		errs.add(next.Line, "", "a second YAML document; a rules file holds one")
	}

	f := &File{Path: path}
	pos := &filePos{}
	d := &decoder{errs: errs, sizes: make(map[*yaml.Node]int)}
	if len(doc.Content) > 0 {
		d.file(doc.Content[0], f, pos)
	}
	f.setDefaults()
	validate(f, pos, errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return f, nil
}
