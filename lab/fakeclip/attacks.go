package fakeclip

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Entry is one labelled clip of an attack set: Label is "genuine" or
// "attack:<type>", Speaker the GRID speaker whose face is shown.
type Entry struct {
	Path, Digits, Label, Speaker string
	// Note says how the clip was made when that needs saying (the
	// splices' word slots).
	Note string
}

// AttackOptions says which attack set Attacks builds.
type AttackOptions struct {
	// Grid lists the GRID clips (one speaker each).
	Grid []string
	// Dir receives the clips (Entry paths are relative to it).
	Dir string
	// Challenges are the four-digit challenges of the synthetic dubs, each
	// made on every clip, at every one of Weights (make-fake-clip's
	// envelope weight).
	Challenges []string
	Weights    []float64
	// Shifts are the audio delays (seconds, negative: audio earlier) of
	// the shifted-audio attack.
	Shifts []float64
	// DigitScore, when set, scores a word for a digit (the recogniser):
	// GridDigitWords finds the GRID speaker's digit word with it, and the
	// same-speaker splices are written.
	DigitScore DigitScoreFunc
	FFmpeg     string
}

// Attacks writes the shared-data attack set and returns its entries:
//
//   - genuine: each GRID clip as recorded, challenge its own digit;
//   - attack:swapped-audio: a clip's video with the next two clips' audio
//     (challenge: the digit that audio says, so the speech check passes);
//   - attack:dub-synthetic: make-fake-clip's dub (flite digits on the
//     speaker's word slots, the GRID 1-3 kHz contour imposed at each
//     weight) for each challenge;
//   - attack:replay: the clip as recorded, replayed against each
//     four-digit challenge (an old recording of the speaker);
//   - attack:still-photo: the first frame held, the real audio;
//   - attack:shifted-audio: the real audio delayed or advanced by Shifts;
//
// and, with DigitScore, the splices of the speaker's own media (each GRID
// speaker has one clip, so "the same speaker's real voice saying the
// challenge over a video of other words" is built from the one digit the
// speaker says; see Splice, GridDigitWords, SpliceTargets):
//
//   - attack:real-voice-dub: the video as recorded; in the audio the
//     digit word and one of four other words swap places (challenge the
//     digit: the mouth says "bin", "blue", the letter or the adverb while
//     the real voice says the digit), and the digit word on all four of
//     those words (challenge the digit four times);
//   - attack:real-video-dub: the reverse: the audio as recorded; in the
//     video the digit word's frames and another word's frames swap places
//     (the mouth says the digit while the voice says the other word, and
//     the other way round where the voice says the digit);
//   - attack:real-splice: the digit word's audio and frames together
//     copied onto the four other words (challenge the digit four times):
//     a cut-and-paste of real, in-sync speech.
func Attacks(ctx context.Context, o AttackOptions) ([]Entry, error) {
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	var out []Entry
	add := func(name, digits, label, speaker, note string) {
		out = append(out, Entry{Path: name, Digits: digits, Label: label, Speaker: speaker, Note: note})
	}
	p := func(n string) string { return filepath.Join(o.Dir, n) }
	ff := func(args ...string) error {
		_, err := run(ctx, o.FFmpeg, append([]string{"-v", "error", "-y", "-nostdin"}, args...)...)
		return err
	}
	enc := []string{"-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le"}
	for i, g := range o.Grid {
		spk := strings.TrimSuffix(filepath.Base(g), filepath.Ext(g))
		d, err := GridDigit(g)
		if err != nil {
			return nil, err
		}
		abs, err := filepath.Abs(g)
		if err != nil {
			return nil, err
		}
		add(abs, d, "genuine", spk, "")
		if o.DigitScore != nil {
			if err := o.splices(ctx, g, spk, d, add); err != nil {
				return nil, fmt.Errorf("splice %s: %w", spk, err)
			}
		}
		for k := 1; k <= 2 && k < len(o.Grid); k++ {
			a := o.Grid[(i+k)%len(o.Grid)]
			ad, err := GridDigit(a)
			if err != nil {
				return nil, err
			}
			name := fmt.Sprintf("swap_%s_%s.mkv", spk, strings.TrimSuffix(filepath.Base(a), filepath.Ext(a)))
			if err := ff(append([]string{"-i", g, "-i", a, "-map", "0:v", "-map", "1:a", "-shortest"}, append(enc, p(name))...)...); err != nil {
				return nil, err
			}
			add(name, ad, "attack:swapped-audio", spk, "")
		}
		for _, ch := range o.Challenges {
			add(abs, ch, "attack:replay", spk, "")
		}
		name := "still_" + spk + ".mkv"
		if err := ff(append([]string{"-i", g, "-filter_complex", "[0:v]select=eq(n\\,0),loop=loop=74:size=1,setpts=N/25/TB[v]", "-map", "[v]", "-map", "0:a"}, append(enc, p(name))...)...); err != nil {
			return nil, err
		}
		add(name, d, "attack:still-photo", spk, "")
		for _, s := range o.Shifts {
			name := fmt.Sprintf("shift_%s_%+04dms.mkv", spk, int(s*1000))
			af := fmt.Sprintf("adelay=%d", int(s*1000))
			if s < 0 {
				af = fmt.Sprintf("atrim=start=%.3f,asetpts=PTS-STARTPTS,apad", -s)
			}
			if err := ff(append([]string{"-i", g, "-af", af, "-shortest"}, append(enc, p(name))...)...); err != nil {
				return nil, err
			}
			add(name, d, "attack:shifted-audio", spk, "")
		}
		// make-fake-clip's dub (Build's genuine clip: the GRID frames held
		// o.Tail at the end, DubAudio's sound), the digit speech made once
		// per challenge and given the contour at each weight.
		do := Options{Grid: g, FFmpeg: o.FFmpeg}
		if err := do.defaults(); err != nil {
			return nil, err
		}
		grid, slots, err := do.gridSlots(ctx)
		if err != nil {
			return nil, fmt.Errorf("dub %s: %w", spk, err)
		}
		dur := float64(len(grid))/Rate + do.Tail
		for _, ch := range o.Challenges {
			if err := checkDigits(ch); err != nil {
				return nil, err
			}
			speech, err := do.speech(ctx, ch, slots, int(math.Round(dur*Rate)))
			if err != nil {
				return nil, fmt.Errorf("dub %s %s: %w", spk, ch, err)
			}
			for _, w := range o.Weights {
				wav := p(fmt.Sprintf("tmp_%s_%s.wav", spk, ch))
				if err := os.WriteFile(wav, WAV(MatchEnvelope(speech, grid, Rate, w), Rate), 0o644); err != nil {
					return nil, err
				}
				name := fmt.Sprintf("dub_%s_%s_w%02.0f.mkv", spk, ch, w*10)
				vf := fmt.Sprintf("tpad=stop_mode=clone:stop_duration=%.2f,format=yuv420p", do.Tail)
				if err := ff(append([]string{"-i", g, "-i", wav, "-map", "0:v", "-map", "1:a", "-vf", vf, "-shortest"}, append(enc, p(name))...)...); err != nil {
					return nil, err
				}
				os.Remove(wav)
				add(name, ch, "attack:dub-synthetic", spk, "")
			}
		}
	}
	return out, nil
}

// splices writes the same-speaker splice attacks of one GRID clip.
func (o AttackOptions) splices(ctx context.Context, g, spk, digit string, add func(name, digits, label, speaker, note string)) error {
	pcm, err := decodePCM(ctx, o.FFmpeg, g)
	if err != nil {
		return err
	}
	slots, score, err := GridDigitWords(ctx, pcm, digit, o.DigitScore)
	if err != nil {
		return err
	}
	k := 4
	note := fmt.Sprintf("words %.2f s; digit %.2f-%.2f s, its score alone %.1f", slots, slots[k].Start, slots[k].End, score)
	targets, rest := SpliceTargets(slots, k)
	four := []Move{{From: slots[rest], To: slots[k]}}
	for _, j := range targets {
		four = append(four, Move{From: slots[k], To: slots[j]})
	}
	splice := func(name, digits, label, what string, audio, video []Move) error {
		if err := Splice(ctx, SpliceOptions{Grid: g, Out: filepath.Join(o.Dir, name), Audio: audio, Video: video, FFmpeg: o.FFmpeg}); err != nil {
			return err
		}
		add(name, digits, label, spk, note+"; "+what)
		return nil
	}
	for _, j := range targets {
		swap := []Move{{From: slots[k], To: slots[j]}, {From: slots[j], To: slots[k]}}
		what := fmt.Sprintf("digit and word %d swapped", j+1)
		if err := splice(fmt.Sprintf("voicedub_%s_w%d.mkv", spk, j+1), digit, "attack:real-voice-dub", "audio: "+what, swap, nil); err != nil {
			return err
		}
		if err := splice(fmt.Sprintf("videodub_%s_w%d.mkv", spk, j+1), digit, "attack:real-video-dub", "video: "+what, nil, swap); err != nil {
			return err
		}
	}
	x4 := strings.Repeat(digit, 4)
	what := fmt.Sprintf("digit on words %v, word %d on the digit", plus1(targets), rest+1)
	if err := splice(fmt.Sprintf("voicedub_%s_x4.mkv", spk), x4, "attack:real-voice-dub", "audio: "+what, four, nil); err != nil {
		return err
	}
	return splice(fmt.Sprintf("splice_%s_x4.mkv", spk), x4, "attack:real-splice", "audio and video: "+what, four, four)
}

func plus1(x []int) []int {
	out := make([]int, len(x))
	for i, v := range x {
		out[i] = v + 1
	}
	return out
}
