// Package manifest reads the lab's liveness evaluation manifests: one
// labelled clip per line, so that anyone can evaluate their own clips from
// any folder without a code change. Both challenge kinds use it (digits for
// the spoken-digit check, "+"-joined actions for the action check).
//
// Format: UTF-8 text, one entry per line, fields separated by tabs (or,
// on a line without a tab, by spaces: paths without spaces):
//
//	path <TAB> challenge <TAB> label [<TAB> group]
//
// path is relative to the manifest's folder (or absolute); challenge is
// what the clip is checked against (e.g. "4921" or "open_mouth+blink");
// label is "genuine" or "attack:<type>"; group (optional) names the person,
// for leaving people out. Blank lines and lines starting with # are
// skipped.
package manifest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Genuine is the label of a bona fide clip.
const Genuine = "genuine"

// MaxLine bounds one line; MaxEntries bounds a manifest.
const (
	MaxLine    = 4096
	MaxEntries = 100000
)

// ErrFormat reports a malformed manifest.
var ErrFormat = errors.New("manifest: malformed")

// Entry is one labelled clip.
type Entry struct {
	Path      string // resolved against the manifest's folder
	Challenge string
	// Attack is the attack type; empty for a genuine clip.
	Attack string
	Group  string
	Line   int
}

// Genuine reports whether e is a bona fide clip.
func (e Entry) Genuine() bool { return e.Attack == "" }

// Label is the entry's label as written.
func (e Entry) Label() string {
	if e.Attack == "" {
		return Genuine
	}
	return "attack:" + e.Attack
}

// Read parses a manifest; relative paths are resolved against dir.
func Read(r io.Reader, dir string) ([]Entry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, MaxLine), MaxLine)
	var out []Entry
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) == 1 {
			f = strings.Fields(line)
		}
		if len(f) < 3 || len(f) > 4 {
			return nil, fmt.Errorf("%w: line %d: want 3 or 4 fields, got %d", ErrFormat, n, len(f))
		}
		e := Entry{Path: strings.TrimSpace(f[0]), Challenge: strings.TrimSpace(f[1]), Line: n}
		if len(f) == 4 {
			e.Group = strings.TrimSpace(f[3])
		}
		if e.Path == "" || e.Challenge == "" {
			return nil, fmt.Errorf("%w: line %d: empty path or challenge", ErrFormat, n)
		}
		switch label := strings.TrimSpace(f[2]); {
		case label == Genuine:
		case strings.HasPrefix(label, "attack:") && len(label) > len("attack:"):
			e.Attack = strings.TrimPrefix(label, "attack:")
		default:
			return nil, fmt.Errorf("%w: line %d: label %q is neither %q nor attack:<type>", ErrFormat, n, label, Genuine)
		}
		if !filepath.IsAbs(e.Path) {
			e.Path = filepath.Join(dir, e.Path)
		}
		if len(out) >= MaxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrFormat, MaxEntries)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrFormat, n+1, err)
	}
	return out, nil
}

// ReadFile reads the manifest at path (relative clip paths are resolved
// against its folder).
func ReadFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, filepath.Dir(path))
}

// Write writes entries in the manifest format, paths relative to dir where
// they lie inside it.
func Write(w io.Writer, dir string, entries []Entry) error {
	for _, e := range entries {
		p := e.Path
		if r, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(r, "..") {
			p = r
		}
		line := p + "\t" + e.Challenge + "\t" + e.Label()
		if e.Group != "" {
			line += "\t" + e.Group
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}
