package manifest

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
		err  bool
	}{
		{"genuine and attack", "# comment\n\na.mp4\t4921\tgenuine\tgrid1\n/abs/b.mp4\topen_mouth+blink\tattack:still_photo\n",
			[]Entry{{Path: "/m/a.mp4", Challenge: "4921", Group: "grid1", Line: 3},
				{Path: "/abs/b.mp4", Challenge: "open_mouth+blink", Attack: "still_photo", Line: 4}}, false},
		{"crlf", "a.mp4\t1\tgenuine\r\n", []Entry{{Path: "/m/a.mp4", Challenge: "1", Line: 1}}, false},
		{"two fields", "a.mp4\t4921\n", nil, true},
		{"five fields", "a\tb\tgenuine\tg\tx\n", nil, true},
		{"bad label", "a.mp4\t4921\tattack\n", nil, true},
		{"empty attack type", "a.mp4\t4921\tattack:\n", nil, true},
		{"empty path", "\t4921\tgenuine\n", nil, true},
		{"line too long", strings.Repeat("x", MaxLine+1) + "\t1\tgenuine\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(strings.NewReader(tt.in), "/m")
			if tt.err {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("err = %v, want ErrFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	in := []Entry{{Path: "/d/x/a.mp4", Challenge: "blink+nod", Group: "p1", Line: 1},
		{Path: "/d/b.mp4", Challenge: "nod+blink", Attack: "wrong_order", Line: 2}}
	var buf bytes.Buffer
	if err := Write(&buf, "/d", in); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "x/a.mp4\t") {
		t.Errorf("path not relative: %q", buf.String())
	}
	out, err := Read(&buf, "/d")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: %+v != %+v", out, in)
	}
}

func FuzzRead(f *testing.F) {
	f.Add("a.mp4\t4921\tgenuine\tg\n")
	f.Add("b\tblink+nod\tattack:still_photo\n# x\n")
	f.Fuzz(func(t *testing.T, s string) {
		es, err := Read(strings.NewReader(s), "/m")
		if err != nil {
			return
		}
		for _, e := range es {
			if e.Path == "" || e.Challenge == "" {
				t.Fatalf("accepted empty field: %+v", e)
			}
		}
	})
}
