package facelogin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trustid/trustid/liveness/media"
)

// beginIDNumber reads the optional id_number of a begin request.
func beginIDNumber(r *http.Request) (string, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return "", fmt.Errorf("begin body: %w", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return "", nil
	}
	var body struct {
		IDNumber string `json:"id_number"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return "", fmt.Errorf("begin body: %w", err)
	}
	if len(body.IDNumber) > 64 {
		return "", errors.New("begin body: id_number too long")
	}
	return body.IDNumber, nil
}

type evidence struct {
	challengeID, idNumber string
	video, wav            []byte
	frames                []media.JPEGFrame
}

var errEvidence = errors.New("bad evidence")

// readEvidence parses the multipart evidence with limits on every part.
func readEvidence(mr *multipart.Reader, maxVideo int64, maxFrames int) (*evidence, error) {
	ev := &evidence{}
	var stamps []time.Duration
	var jpegs [][]byte
	const maxField = 4 << 10
	const maxFrameBytes = 512 << 10
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errEvidence, err)
		}
		read := func(limit int64) ([]byte, error) {
			b, err := io.ReadAll(io.LimitReader(p, limit+1))
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", errEvidence, p.FormName(), err)
			}
			if int64(len(b)) > limit {
				return nil, fmt.Errorf("%w: %s larger than %d bytes", errEvidence, p.FormName(), limit)
			}
			return b, nil
		}
		var b []byte
		switch p.FormName() {
		case "challenge_id", "id_number", "timestamps_ms":
			b, err = read(maxField)
		case "video", "audio":
			b, err = read(maxVideo)
		case "frame":
			if len(jpegs) >= maxFrames {
				return nil, fmt.Errorf("%w: more than %d frames", errEvidence, maxFrames)
			}
			b, err = read(maxFrameBytes)
		default:
			return nil, fmt.Errorf("%w: unknown field %q", errEvidence, p.FormName())
		}
		if err != nil {
			return nil, err
		}
		switch p.FormName() {
		case "challenge_id":
			ev.challengeID = string(b)
		case "id_number":
			ev.idNumber = string(b)
		case "timestamps_ms":
			for _, s := range strings.Split(string(b), ",") {
				ms, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if err != nil || ms < 0 || ms > 60_000 {
					return nil, fmt.Errorf("%w: bad timestamp %q", errEvidence, s)
				}
				stamps = append(stamps, time.Duration(ms*float64(time.Millisecond)))
			}
		case "video":
			ev.video = b
		case "audio":
			ev.wav = b
		case "frame":
			jpegs = append(jpegs, b)
		}
	}
	if ev.challengeID == "" {
		return nil, fmt.Errorf("%w: missing challenge_id", errEvidence)
	}
	if len(jpegs) > 0 {
		if len(stamps) != len(jpegs) {
			return nil, fmt.Errorf("%w: %d frames but %d timestamps", errEvidence, len(jpegs), len(stamps))
		}
		if len(ev.wav) == 0 {
			return nil, fmt.Errorf("%w: frames without audio", errEvidence)
		}
		for i := range jpegs {
			ev.frames = append(ev.frames, media.JPEGFrame{T: stamps[i], JPEG: jpegs[i]})
		}
		sort.SliceStable(ev.frames, func(i, j int) bool { return ev.frames[i].T < ev.frames[j].T })
	}
	return ev, nil
}
