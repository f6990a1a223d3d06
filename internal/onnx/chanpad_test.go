package onnx

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// TestRewriteChannelPadFaceMesh: the face mesh's three channel paddings
// become 1x1 convolutions, before or after the PRelu rewrite, and nothing
// else changes; the other models are left byte for byte. That the
// rewritten mesh computes what the original does is liveness/facemesh's
// TestRewritesAgree.
func TestRewriteChannelPadFaceMesh(t *testing.T) {
	dir := os.Getenv("TRUSTID_MODELS")
	b, err := os.ReadFile(filepath.Join(dir, "face_mesh.onnx"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no face mesh model in TRUSTID_MODELS (%q): %v", dir, err)
		}
		t.Skipf("no face mesh model in TRUSTID_MODELS (%q): %v", dir, err)
	}
	prelu, _, err := RewritePRelu(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, model := range map[string][]byte{"as converted": b, "PRelu rewritten": prelu} {
		t.Run(name, func(t *testing.T) {
			before, initsBefore := ops(t, model)
			out, k, err := RewriteChannelPad(model)
			if err != nil {
				t.Fatal(err)
			}
			after, initsAfter := ops(t, out)
			if k != 3 || before["Pad"] != 3 || after["Pad"] != 0 || after["Conv"] != before["Conv"]+3 {
				t.Fatalf("rewrote %d; ops before %v, after %v", k, before, after)
			}
			if initsAfter != initsBefore { // each pads tensor replaced by a weight tensor
				t.Errorf("initializers: %d before, %d after", initsBefore, initsAfter)
			}
			if _, again, err := RewriteChannelPad(out); err != nil || again != 0 {
				t.Errorf("rewriting the rewritten model: %d Pads, %v", again, err)
			}
		})
	}
	for _, f := range []string{"melspectrogram.onnx", "fr_detect.onnx"} {
		m, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		if out, k, err := RewriteChannelPad(m); err != nil || k != 0 || string(out) != string(m) {
			t.Errorf("%s: rewrote %d (%v), same bytes %v", f, k, err, string(out) == string(m))
		}
	}
	for _, bad := range [][]byte{{0xff}, {0x3a, 0x05, 0x0a}} {
		if _, _, err := RewriteChannelPad(bad); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
}

// TestChannelPads: only a pad of the channel axis with zeros is taken.
func TestChannelPads(t *testing.T) {
	pads := func(p [8]int64, packed bool) onnxTensor {
		t := onnxTensor{name: "p", dims: []uint64{8}, typ: tensorInt64}
		for _, x := range p {
			if packed {
				t.data = protowire.AppendVarint(t.data, uint64(x))
			} else {
				t.data = binary.LittleEndian.AppendUint64(t.data, uint64(x))
			}
		}
		return t
	}
	attr := func(name, s string) []byte {
		a := appendString(nil, 1, name)
		a = appendString(a, 4, s)
		return protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), a)
	}
	for _, c := range []struct {
		name   string
		in     []string
		pads   onnxTensor
		attr   []byte
		b, e   int
		accept bool
	}{
		{"channels after", []string{"x", "p"}, pads([8]int64{0, 0, 0, 0, 0, 16, 0, 0}, false), nil, 0, 16, true},
		{"channels both sides, packed", []string{"x", "p", ""}, pads([8]int64{0, 2, 0, 0, 0, 3, 0, 0}, true), attr("mode", "constant"), 2, 3, true},
		{"spatial too", []string{"x", "p"}, pads([8]int64{0, 0, 1, 0, 0, 16, 0, 0}, false), nil, 0, 0, false},
		{"batch", []string{"x", "p"}, pads([8]int64{1, 0, 0, 0, 0, 0, 0, 0}, false), nil, 0, 0, false},
		{"nothing", []string{"x", "p"}, pads([8]int64{}, false), nil, 0, 0, false},
		{"negative (a crop)", []string{"x", "p"}, pads([8]int64{0, -1, 0, 0, 0, 0, 0, 0}, false), nil, 0, 0, false},
		{"reflect", []string{"x", "p"}, pads([8]int64{0, 0, 0, 0, 0, 16, 0, 0}, false), attr("mode", "reflect"), 0, 0, false},
		{"a constant value", []string{"x", "p", "v"}, pads([8]int64{0, 0, 0, 0, 0, 16, 0, 0}, false), nil, 0, 0, false},
		{"pads not a constant", []string{"x", "q"}, pads([8]int64{0, 0, 0, 0, 0, 16, 0, 0}, false), nil, 0, 0, false},
		{"opset 2 (pads as attribute)", []string{"x"}, pads([8]int64{0, 0, 0, 0, 0, 16, 0, 0}, false), nil, 0, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, err := fields(appendNode(nil, "Pad", c.in, "y", "pad", nil))
			if err != nil || len(fs) != 1 {
				t.Fatal(err)
			}
			nb := append(fs[0].val, c.attr...)
			nd, err := parseNode(nb)
			if err != nil {
				t.Fatal(err)
			}
			b, e, ok := channelPads(nd, nb, map[string]onnxTensor{"p": c.pads})
			if ok != c.accept || (ok && (b != c.b || e != c.e)) {
				t.Errorf("got %d, %d, %v; want %d, %d, %v", b, e, ok, c.b, c.e, c.accept)
			}
		})
	}
}
