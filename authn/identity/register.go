package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/trustid/trustid/authn/idnumber"
	"github.com/trustid/trustid/internal/store"
)

// Reasons a register row fails; stable machine codes.
const (
	ReasonMalformedRow      = "malformed_row"
	ReasonInvalidIDNumber   = "invalid_id_number"
	ReasonInvalidName       = "invalid_name"
	ReasonInvalidPhotoName  = "invalid_photo_name"
	ReasonPhotoMissing      = "photo_missing"
	ReasonPhotoTooLarge     = "photo_too_large"
	ReasonBadImage          = "bad_image"
	ReasonNoFace            = "no_face"
	ReasonSeveralFaces      = "several_faces"
	ReasonPoorQuality       = "poor_quality"
	ReasonDuplicateRow      = "duplicate_row"
	ReasonDuplicateIdentity = "duplicate_identity"
	ReasonInternal          = "internal_error"
)

// RowFailure says why one row was not imported. It never carries the ID
// number: the line number identifies the row to whoever holds the file.
type RowFailure struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// ImportReport summarises an import.
type ImportReport struct {
	Rows         int          `json:"rows"`
	Imported     int          `json:"imported"`  // new citizens
	Updated      int          `json:"updated"`   // changed photo or name
	Unchanged    int          `json:"unchanged"` // same photo, name and model: nothing done
	Failed       int          `json:"failed"`
	Failures     []RowFailure `json:"failures"`
	ModelVersion string       `json:"model_version"`
}

type outcome int

const (
	outFailed outcome = iota
	outImported
	outUpdated
	outUnchanged
)

// ImportCSV parses a register CSV (see ParseCSV) and imports it with photos
// read from the photos file system (file names relative to its root).
// actor names who imports, for the audit log ("operator:NAME",
// "client:ID").
func (s *Service) ImportCSV(ctx context.Context, actor string, csvData io.Reader, photos fs.FS) (*ImportReport, error) {
	rows, fails, err := ParseCSV(csvData, s.cfg.MaxRows)
	if err != nil {
		return nil, err
	}
	rep, err := s.Import(ctx, actor, rows, photos)
	if rep != nil {
		rep.Rows += len(fails)
		rep.Failed += len(fails)
		rep.Failures = append(rep.Failures, fails...)
		sortFailures(rep.Failures)
	}
	return rep, err
}

// Import creates or updates one citizen per row. It is idempotent: a row
// whose citizen exists with the same photo (SHA-256), name and model version
// changes nothing; a changed photo replaces the register template; a changed
// name updates the citizen. Rows fail independently (the report says why);
// the error is only for the import as a whole (context cancelled), and even
// then the report covers the rows done. Embeddings run on cfg.Workers
// goroutines.
func (s *Service) Import(ctx context.Context, actor string, rows []Row, photos fs.FS) (*ImportReport, error) {
	if len(rows) > s.cfg.MaxRows {
		return nil, fmt.Errorf("%w: more than %d rows", ErrCSV, s.cfg.MaxRows)
	}
	rep := &ImportReport{Rows: len(rows), Failures: []RowFailure{}, ModelVersion: s.model}
	var mu sync.Mutex
	record := func(o outcome, f *RowFailure) {
		mu.Lock()
		defer mu.Unlock()
		switch o {
		case outImported:
			rep.Imported++
		case outUpdated:
			rep.Updated++
		case outUnchanged:
			rep.Unchanged++
		default:
			rep.Failed++
			rep.Failures = append(rep.Failures, *f)
		}
	}

	// Cheap checks first, in file order, so duplicates are judged by line.
	firstLine := map[string]int{}
	var todo []Row
	for _, r := range rows {
		r.IDNumber = idnumber.Normalize(r.IDNumber)
		if err := s.cfg.IDNumbers.Validate(r.IDNumber); err != nil {
			record(outFailed, &RowFailure{Line: r.Line, Reason: ReasonInvalidIDNumber, Detail: strings.TrimPrefix(err.Error(), "idnumber: ")})
			continue
		}
		if !ValidName(r.Name) {
			record(outFailed, &RowFailure{Line: r.Line, Reason: ReasonInvalidName})
			continue
		}
		if !validPhotoName(r.Photo) {
			record(outFailed, &RowFailure{Line: r.Line, Reason: ReasonInvalidPhotoName, Detail: "a relative path inside the photos directory"})
			continue
		}
		if l, dup := firstLine[r.IDNumber]; dup {
			record(outFailed, &RowFailure{Line: r.Line, Reason: ReasonDuplicateRow, Detail: "same ID number as line " + strconv.Itoa(l)})
			continue
		}
		firstLine[r.IDNumber] = r.Line
		todo = append(todo, r)
	}

	type job struct {
		seq int
		row Row
	}
	work := make(chan job)
	turns := newSequencer()
	var wg sync.WaitGroup
	for range min(s.cfg.Workers, max(len(todo), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				o, f := s.importRow(ctx, actor, j.row, photos, turns, j.seq)
				record(o, f)
			}
		}()
	}
	var err error
feed:
	for i, r := range todo {
		select {
		case work <- job{i, r}:
		case <-ctx.Done():
			err = ctx.Err()
			for _, r := range todo[i:] {
				record(outFailed, &RowFailure{Line: r.Line, Reason: ReasonInternal, Detail: "import cancelled"})
			}
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		err = ctx.Err()
	}
	sortFailures(rep.Failures)
	s.audit(ctx, &store.AuditEvent{
		Actor: actor, Action: "register.import_batch", Outcome: "ok",
		Detail: map[string]string{
			"rows": strconv.Itoa(rep.Rows), "imported": strconv.Itoa(rep.Imported),
			"updated": strconv.Itoa(rep.Updated), "unchanged": strconv.Itoa(rep.Unchanged),
			"failed": strconv.Itoa(rep.Failed), "model_version": s.model,
		},
	})
	s.cfg.Logger.InfoContext(ctx, "register import", "rows", rep.Rows, "imported", rep.Imported,
		"updated", rep.Updated, "unchanged", rep.Unchanged, "failed", rep.Failed)
	return rep, err
}

func sortFailures(f []RowFailure) {
	slices.SortStableFunc(f, func(a, b RowFailure) int { return a.Line - b.Line })
}

// sequencer lets rows embedded in parallel commit in file order, so the
// outcome of an import (which of two rows with the same face is the
// duplicate) does not depend on scheduling.
type sequencer struct {
	mu       sync.Mutex
	cond     *sync.Cond
	next     int
	finished map[int]bool
}

func newSequencer() *sequencer {
	q := &sequencer{finished: map[int]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// wait blocks until every row before seq has finished. Rows are handed out
// in order, so the lowest unfinished row never waits: no deadlock.
func (q *sequencer) wait(seq int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.next != seq {
		q.cond.Wait()
	}
}

// finish marks row seq done (whether or not it waited).
func (q *sequencer) finish(seq int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.finished[seq] = true
	for q.finished[q.next] {
		delete(q.finished, q.next)
		q.next++
	}
	q.cond.Broadcast()
}

// importRow reads and embeds the row's photo (in parallel with other rows),
// then waits for its turn to commit.
func (s *Service) importRow(ctx context.Context, actor string, r Row, photos fs.FS, turns *sequencer, seq int) (outcome, *RowFailure) {
	defer turns.finish(seq)
	fail := func(reason, detail string) (outcome, *RowFailure) {
		return outFailed, &RowFailure{Line: r.Line, Reason: reason, Detail: detail}
	}
	internal := func(err error) (outcome, *RowFailure) {
		s.cfg.Logger.ErrorContext(ctx, "register import row", "line", r.Line, "err", err)
		return fail(ReasonInternal, "")
	}
	img, reason, err := readPhoto(photos, r.Photo, s.cfg.MaxPhotoBytes)
	if err != nil {
		return fail(reason, err.Error())
	}
	sum := sha256.Sum256(img)
	hash := sum[:]

	cit, regs, err := s.registerState(ctx, r.IDNumber)
	if err != nil {
		return internal(err)
	}
	if cit != nil && len(regs) == 1 && bytes.Equal(regs[0].PhotoHash, hash) && regs[0].ModelVersion == s.model {
		if cit.Name == r.Name {
			return outUnchanged, nil
		}
		if err := s.rename(ctx, actor, cit, r.Name); err != nil {
			return internal(err)
		}
		return outUpdated, nil
	}

	probe, err := s.cfg.Embedder.Embed(ctx, img)
	if err != nil {
		if reason, ok := probeReason(err); ok {
			return fail(reason, probeDetail(err))
		}
		return internal(err)
	}
	if probe.ModelVersion != s.model {
		return internal(fmt.Errorf("%w: embedder returned %q, want %q", ErrModelMismatch, probe.ModelVersion, s.model))
	}

	turns.wait(seq)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// Read again under the lock: another import may have written the citizen.
	cit, regs, err = s.registerState(ctx, r.IDNumber)
	if err != nil {
		return internal(err)
	}
	self := ""
	if cit != nil {
		self = cit.ID
	}
	if other, score, err := s.duplicateOf(self, probe.Embedding); err != nil {
		return internal(err)
	} else if other != "" {
		return fail(ReasonDuplicateIdentity, fmt.Sprintf("face matches citizen %s (score %.3f, FAR %s)", other, score, s.cfg.DuplicateFAR))
	}
	tid, err := s.newTemplateID()
	if err != nil {
		return internal(err)
	}
	t := &store.Template{
		ID: tid, Kind: store.TemplateRegister, ModelVersion: s.model,
		Vector: probe.Embedding, PhotoHash: hash,
	}
	if cit == nil {
		cid, err := s.newID()
		if err != nil {
			return internal(err)
		}
		c := &store.Citizen{ID: cid, IDNumber: r.IDNumber, Name: r.Name}
		if err := s.cfg.Store.Citizens().Create(ctx, c); err != nil {
			return internal(err)
		}
		t.CitizenID = cid
		if err := s.cfg.Store.Templates().Create(ctx, t); err != nil {
			return internal(err)
		}
		if err := s.cfg.Index.Add(indexKey(cid, t.ID), t.Vector); err != nil {
			return internal(err)
		}
		s.audit(ctx, &store.AuditEvent{
			Actor: actor, Action: "register.create", Subject: cid, Object: t.ID, Outcome: "ok",
			Detail: map[string]string{"model_version": s.model},
		})
		return outImported, nil
	}

	t.CitizenID = cit.ID
	if err := s.cfg.Store.Templates().ReplaceRegister(ctx, t); err != nil {
		return internal(err)
	}
	for _, old := range regs {
		s.cfg.Index.Remove(indexKey(old.CitizenID, old.ID))
	}
	if err := s.cfg.Index.Add(indexKey(cit.ID, t.ID), t.Vector); err != nil {
		return internal(err)
	}
	change := "photo"
	if cit.Name != r.Name {
		if _, err := s.cfg.Store.Citizens().Update(ctx, cit.ID, func(c *store.Citizen) error {
			c.Name = r.Name
			return nil
		}); err != nil {
			return internal(err)
		}
		change = "photo,name"
	}
	s.audit(ctx, &store.AuditEvent{
		Actor: actor, Action: "register.update", Subject: cit.ID, Object: t.ID, Outcome: "ok",
		Detail: map[string]string{"model_version": s.model, "change": change},
	})
	return outUpdated, nil
}

func (s *Service) rename(ctx context.Context, actor string, cit *store.Citizen, name string) error {
	if _, err := s.cfg.Store.Citizens().Update(ctx, cit.ID, func(c *store.Citizen) error {
		c.Name = name
		return nil
	}); err != nil {
		return err
	}
	s.audit(ctx, &store.AuditEvent{
		Actor: actor, Action: "register.update", Subject: cit.ID, Outcome: "ok",
		Detail: map[string]string{"change": "name"},
	})
	return nil
}

// registerState returns the citizen with idNumber (nil if none) and their
// register templates.
func (s *Service) registerState(ctx context.Context, idNumber string) (*store.Citizen, []*store.Template, error) {
	cit, err := s.cfg.Store.Citizens().GetByIDNumber(ctx, idNumber)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	all, err := s.cfg.Store.Templates().ListByCitizen(ctx, cit.ID)
	if err != nil {
		return nil, nil, err
	}
	var regs []*store.Template
	for _, t := range all {
		if t.Kind == store.TemplateRegister {
			regs = append(regs, t)
		}
	}
	return cit, regs, nil
}

// duplicateOf returns a citizen other than self whose template matches v at
// the duplicate-check threshold ("" if none).
func (s *Service) duplicateOf(self string, v []float32) (string, float32, error) {
	hits, err := s.cfg.Index.Search(v, duplicateCandidates)
	if err != nil {
		return "", 0, err
	}
	for _, h := range hits {
		if h.Score < s.dupThresh {
			break // best first
		}
		if c, _ := splitIndexKey(h.ID); c != self {
			return c, h.Score, nil
		}
	}
	return "", 0, nil
}

func readPhoto(photos fs.FS, name string, maxBytes int64) ([]byte, string, error) {
	f, err := photos.Open(name)
	if err != nil {
		return nil, ReasonPhotoMissing, errors.New("photo file not found")
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && (st.IsDir() || st.Size() > maxBytes) {
		if st.IsDir() {
			return nil, ReasonPhotoMissing, errors.New("photo is a directory")
		}
		return nil, ReasonPhotoTooLarge, fmt.Errorf("%d bytes > %d", st.Size(), maxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, ReasonPhotoMissing, errors.New("photo unreadable")
	}
	if int64(len(b)) > maxBytes {
		return nil, ReasonPhotoTooLarge, fmt.Errorf("over %d bytes", maxBytes)
	}
	return b, "", nil
}

// probeReason maps an Embedder error to a row failure reason.
func probeReason(err error) (string, bool) {
	switch {
	case errors.Is(err, ErrNoFace):
		return ReasonNoFace, true
	case errors.Is(err, ErrSeveralFaces):
		return ReasonSeveralFaces, true
	case errors.Is(err, ErrPoorQuality):
		return ReasonPoorQuality, true
	case errors.Is(err, ErrImageTooLarge):
		return ReasonPhotoTooLarge, true
	case errors.Is(err, ErrBadImage):
		return ReasonBadImage, true
	}
	return "", false
}

// probeDetail is the engine's own description (e.g. "several faces: 3
// detected"), without our sentinel's prefix.
func probeDetail(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": face: "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}
