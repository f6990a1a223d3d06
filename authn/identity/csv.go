package identity

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Row is one register line: a citizen and the file name of their photo.
type Row struct {
	Line     int // 1-based line in the file (the header is line 1)
	IDNumber string
	Name     string
	Photo    string
}

// ErrCSV reports a register file that cannot be read at all (no header,
// wrong columns, too many rows). Bad individual rows are RowFailures.
var ErrCSV = errors.New("identity: register CSV")

// Columns of the register CSV, in any order.
var csvColumns = []string{"id_number", "name", "photo"}

// MaxNameRunes bounds a citizen's name.
const MaxNameRunes = 100

// ParseCSV reads a register CSV (UTF-8, optional BOM, header
// id_number,name,photo in any order). Malformed lines become failures with
// ReasonMalformedRow and reading goes on; a missing or wrong header, or more
// than maxRows data rows, stops with ErrCSV. Field values are returned
// trimmed but otherwise unvalidated (Import validates them).
func ParseCSV(r io.Reader, maxRows int) ([]Row, []RowFailure, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%w: empty file", ErrCSV)
		}
		return nil, nil, fmt.Errorf("%w: header: %v", ErrCSV, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := col[h]; dup {
			return nil, nil, fmt.Errorf("%w: column %q twice", ErrCSV, h)
		}
		col[h] = i
	}
	for _, c := range csvColumns {
		if _, ok := col[c]; !ok {
			return nil, nil, fmt.Errorf("%w: header needs columns %s", ErrCSV, strings.Join(csvColumns, ","))
		}
	}
	if len(col) != len(csvColumns) {
		return nil, nil, fmt.Errorf("%w: header has columns other than %s", ErrCSV, strings.Join(csvColumns, ","))
	}
	cr.FieldsPerRecord = len(header)

	var rows []Row
	var fails []RowFailure
	for n := 0; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if n >= maxRows {
			return nil, nil, fmt.Errorf("%w: more than %d rows", ErrCSV, maxRows)
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line := pe.StartLine
				if line == 0 {
					line = pe.Line
				}
				// Quote errors resynchronise at the next line; keep going.
				fails = append(fails, RowFailure{Line: line, Reason: ReasonMalformedRow, Detail: pe.Err.Error()})
				continue
			}
			return nil, nil, fmt.Errorf("%w: %v", ErrCSV, err)
		}
		line, _ := cr.FieldPos(0)
		rows = append(rows, Row{
			Line:     line,
			IDNumber: strings.TrimSpace(rec[col["id_number"]]),
			Name:     strings.TrimSpace(rec[col["name"]]),
			Photo:    strings.TrimSpace(rec[col["photo"]]),
		})
	}
	return rows, fails, nil
}

// ValidName reports whether s is an acceptable citizen name: 1 to
// MaxNameRunes runes of letters and combining marks, single spaces between
// words, and the punctuation names use (. ' - and the middle dots used in
// transliterated names, U+00B7 and U+30FB).
func ValidName(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNameRunes {
		return false
	}
	if strings.TrimSpace(s) != s || strings.Contains(s, "  ") {
		return false
	}
	letters := 0
	for _, r := range s {
		switch {
		case unicode.IsLetter(r):
			letters++
		case unicode.IsMark(r), r == ' ', r == '.', r == '\'', r == '-', r == '\u00b7', r == '\u30fb':
		default:
			return false
		}
	}
	return letters > 0
}

// validPhotoName reports whether name is a relative path inside the photos
// directory: slash-separated, no "." or ".." elements, no hidden elements,
// no backslashes (fs.ValidPath plus those rules).
func validPhotoName(name string) bool {
	if name == "" || len(name) > 255 || !fs.ValidPath(name) || strings.Contains(name, `\`) {
		return false
	}
	for _, el := range strings.Split(name, "/") {
		if strings.HasPrefix(el, ".") {
			return false
		}
	}
	return true
}
