package identity_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/trustid/trustid/authn/identity"
)

func TestParseCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		rows    []identity.Row
		fails   []int // lines of malformed rows
		wantErr bool
	}{
		{"plain", "id_number,name,photo\n1,A,a.jpg\n2,B,b.jpg\n",
			[]identity.Row{{Line: 2, IDNumber: "1", Name: "A", Photo: "a.jpg"}, {Line: 3, IDNumber: "2", Name: "B", Photo: "b.jpg"}}, nil, false},
		{"bom crlf reordered trimmed", "\ufeffphoto, Name ,ID_NUMBER\r\n a.jpg , Alice Liddell ,1 \r\n",
			[]identity.Row{{Line: 2, IDNumber: "1", Name: "Alice Liddell", Photo: "a.jpg"}}, nil, false},
		{"quoted comma and newline", "id_number,name,photo\n1,\"Li, Wei\",a.jpg\n2,\"multi\nline\",b.jpg\n3,C,c.jpg\n",
			[]identity.Row{{Line: 2, IDNumber: "1", Name: "Li, Wei", Photo: "a.jpg"}, {Line: 3, IDNumber: "2", Name: "multi\nline", Photo: "b.jpg"}, {Line: 5, IDNumber: "3", Name: "C", Photo: "c.jpg"}}, nil, false},
		{"field count and bare quote", "id_number,name,photo\n1,A\n2,B\"x,b.jpg\n3,C,c.jpg\n",
			[]identity.Row{{Line: 4, IDNumber: "3", Name: "C", Photo: "c.jpg"}}, []int{2, 3}, false},
		{"header only", "id_number,name,photo\n", nil, nil, false},
		{"empty", "", nil, nil, true},
		{"missing column", "id_number,name\n1,A\n", nil, nil, true},
		{"extra column", "id_number,name,photo,notes\n1,A,a.jpg,x\n", nil, nil, true},
		{"duplicate column", "id_number,name,photo,name\n", nil, nil, true},
		{"too many rows", "id_number,name,photo\n" + strings.Repeat("1,A,a.jpg\n", 4), nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, fails, err := identity.ParseCSV(strings.NewReader(tt.in), 3)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, identity.ErrCSV) {
					t.Errorf("error %v does not wrap ErrCSV", err)
				}
				return
			}
			if len(rows) != len(tt.rows) {
				t.Fatalf("rows %+v, want %+v", rows, tt.rows)
			}
			for i := range rows {
				if rows[i] != tt.rows[i] {
					t.Errorf("row %d = %+v, want %+v", i, rows[i], tt.rows[i])
				}
			}
			if len(fails) != len(tt.fails) {
				t.Fatalf("failures %+v, want lines %v", fails, tt.fails)
			}
			for i, f := range fails {
				if f.Line != tt.fails[i] || f.Reason != identity.ReasonMalformedRow {
					t.Errorf("failure %d = %+v, want line %d", i, f, tt.fails[i])
				}
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"Alice":                   true,
		"Aaron Eckhart":           true,
		"王小明":                     true,
		"José María O'Neil-Smith": true,
		"阿依古丽·买买提":                true,
		"":                        false,
		" Alice":                  false,
		"Alice  Smith":            false,
		"Alice1":                  false,
		"Alice\n":                 false,
		"<script>":                false,
		"...":                     false,
		strings.Repeat("a", 101):  false,
		"\xff":                    false,
	} {
		if got := identity.ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestThresholds(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		at      string
		want    float32
		wantErr bool
	}{
		{"map", `{"model":"m","thresholds":{"1e-3":0.34,"1e-4":0.41,"1e-5":0.48}}`, "1e-4", 0.41, false},
		{"calibrate-face output", `{"model":"m","created":"x","impostor_pairs":9,"points":[{"far":0.001,"threshold":0.34,"tar":0.99,"resolved":true},{"far":1e-5,"threshold":0.48,"resolved":false}]}`, "1e-5", 0.48, false},
		{"spelled differently", `{"thresholds":{"0.0001":0.41}}`, "1e-04", 0.41, false},
		{"missing point", `{"thresholds":{"1e-3":0.34}}`, "1e-4", 0, true},
		{"empty", `{}`, "1e-4", 0, true},
		{"not json", `nope`, "1e-4", 0, true},
		{"far out of range", `{"thresholds":{"2":0.3}}`, "2", 0, true},
		{"threshold not a cosine", `{"thresholds":{"1e-4":3}}`, "1e-4", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th, err := identity.ParseThresholds([]byte(tt.in))
			if err == nil {
				var v float32
				v, err = th.At(tt.at)
				if err == nil && v != tt.want {
					t.Errorf("At(%s) = %v, want %v", tt.at, v, tt.want)
				}
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, identity.ErrThresholds) {
				t.Errorf("error %v does not wrap ErrThresholds", err)
			}
		})
	}
	_, err := identity.LoadThresholds(filepath.Join(t.TempDir(), "missing.json"))
	if !errors.Is(err, identity.ErrThresholds) || !strings.Contains(err.Error(), "calibrate-face") {
		t.Errorf("LoadThresholds(missing) = %v, want a hint to run calibrate-face", err)
	}
	p := filepath.Join(t.TempDir(), "t.json")
	os.WriteFile(p, []byte(`{"thresholds":{"1e-4":0.41}}`), 0o600)
	if th, err := identity.LoadThresholds(p); err != nil || th.ByFAR[identity.FARName(1e-4)] != 0.41 {
		t.Errorf("LoadThresholds = %+v, %v", th, err)
	}
}

func TestThresholdsForPopulation(t *testing.T) {
	const file = `{"model":"m","points":[{"far":0.0001,"threshold":0.47,"population":"east_asian"}],
	  "populations":[{"name":"east_asian","points":[{"far":0.0001,"threshold":0.47}]},
	                 {"name":"lfw","points":[{"far":0.0001,"threshold":0.43}]}]}`
	tests := []struct {
		population string
		want       float32
		wantErr    bool
	}{
		{"", 0.47, false},
		{identity.Strictest, 0.47, false},
		{"east_asian", 0.47, false},
		{"lfw", 0.43, false},
		{"martian", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.population, func(t *testing.T) {
			th, err := identity.ParseThresholdsFor([]byte(file), tt.population)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, identity.ErrThresholds) || !strings.Contains(err.Error(), "lfw") {
					t.Errorf("error %v: want ErrThresholds naming the calibrated populations", err)
				}
				return
			}
			if v, err := th.At("1e-4"); err != nil || v != tt.want {
				t.Errorf("At(1e-4) = %v, %v, want %v", v, err, tt.want)
			}
		})
	}
	// A file without populations answers only for the shipped points.
	if _, err := identity.ParseThresholdsFor([]byte(`{"thresholds":{"1e-4":0.41}}`), "east_asian"); !errors.Is(err, identity.ErrThresholds) {
		t.Errorf("population of a single-population file: %v", err)
	}
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{
		"id_number,name,photo\n1,A,a.jpg\n",
		"\ufeffphoto,name,id_number\r\n\"a,b\",\"x\"\"y\",1\r\n",
		"id_number,name,photo\n1,A\n2,B\"x,b.jpg\n",
		"id_number,name,photo\n\"unterminated\n",
		"",
		"a,b,c\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxRows = 50
		rows, fails, err := identity.ParseCSV(strings.NewReader(string(data)), maxRows)
		if err != nil {
			if !errors.Is(err, identity.ErrCSV) {
				t.Fatalf("error %v does not wrap ErrCSV", err)
			}
			return
		}
		if len(rows)+len(fails) > maxRows {
			t.Fatalf("%d rows and %d failures > %d", len(rows), len(fails), maxRows)
		}
		prev := 1
		for _, r := range rows {
			if r.Line <= prev {
				t.Fatalf("row line %d after %d", r.Line, prev)
			}
			if r.Line < 2 {
				t.Fatalf("data row on line %d", r.Line)
			}
			prev = r.Line
			for _, s := range []string{r.IDNumber, r.Name, r.Photo} {
				if strings.TrimSpace(s) != s {
					t.Fatalf("untrimmed field %q", s)
				}
			}
			if utf8.ValidString(r.Name) && identity.ValidName(r.Name) && strings.ContainsAny(r.Name, "\n\r\x00") {
				t.Fatalf("ValidName accepted %q", r.Name)
			}
		}
	})
}
