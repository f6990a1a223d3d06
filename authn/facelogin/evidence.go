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
	"unicode/utf8"

	"github.com/trustid/trustid/liveness/media"
)

// beginRequest is the optional JSON body of a begin request.
type beginRequest struct {
	IDNumber string `json:"id_number"`
	Device   string `json:"device"`
	// FaceConsent is the citizen's separate consent to face processing,
	// given on the page's consent screen for this sign-in.
	FaceConsent bool `json:"face_consent"`
	// Lang is the login page's language (a BCP 47 tag such as "zh-CN"):
	// it chooses the challenge kind (see Login.kind).
	Lang string `json:"lang,omitempty"`
}

// beginBody reads the optional body of a begin request.
func beginBody(r *http.Request) (beginRequest, error) {
	var body beginRequest
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return body, fmt.Errorf("begin body: %w", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return body, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return body, fmt.Errorf("begin body: %w", err)
	}
	if len(body.IDNumber) > 64 {
		return body, errors.New("begin body: id_number too long")
	}
	if len(body.Lang) > 35 {
		return body, errors.New("begin body: lang too long")
	}
	if !validDevice(body.Device) {
		return body, errors.New("begin body: bad device id")
	}
	return body, nil
}

// beginIDNumber reads the optional id_number of a begin request.
func beginIDNumber(r *http.Request) (string, error) {
	b, err := beginBody(r)
	if err != nil {
		return "", err
	}
	return b.IDNumber, nil
}

// validDevice accepts an empty id or up to 64 URL-safe characters.
func validDevice(d string) bool {
	if len(d) > maxDeviceIDBytes {
		return false
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

type evidence struct {
	challengeID, idNumber, device string
	faceConsent                   bool
	video, wav                    []byte
	frames                        []media.JPEGFrame
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
		case "challenge_id", "id_number", "timestamps_ms", FieldDevice, FieldFaceConsent:
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
		if p.FormName() == "challenge_id" || p.FormName() == "id_number" || p.FormName() == "timestamps_ms" {
			if !utf8.Valid(b) {
				return nil, fmt.Errorf("%w: %s is not UTF-8", errEvidence, p.FormName())
			}
		}
		switch p.FormName() {
		case "challenge_id":
			ev.challengeID = string(b)
		case "id_number":
			ev.idNumber = string(b)
		case FieldFaceConsent:
			ev.faceConsent = string(b) == "yes"
		case FieldDevice:
			if !validDevice(string(b)) {
				return nil, fmt.Errorf("%w: bad device id", errEvidence)
			}
			ev.device = string(b)
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
