package filing_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trustid/trustid/authn/filing"
	"github.com/trustid/trustid/internal/store"
	"github.com/trustid/trustid/internal/store/sqlite/sqlitetest"
)

type counts struct {
	n   []int64
	err error
}

func (c *counts) CountCitizens(context.Context) (int64, error) {
	if c.err != nil {
		return 0, c.err
	}
	n := c.n[0]
	if len(c.n) > 1 {
		c.n = c.n[1:]
	}
	return n, nil
}

// TestCrossing: one warning line when the count crosses the threshold, a
// readiness warning while at or above it, the metric follows the count.
func TestCrossing(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	c := &counts{n: []int64{99998, 99999, 100000, 100001, 99000}}
	w, err := filing.New(filing.Config{Templates: c, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, want := range []struct {
		n       int64
		warning bool
		crossed int // warning lines so far
	}{{99998, false, 0}, {99999, false, 0}, {100000, true, 1}, {100001, true, 1}, {99000, false, 1}} {
		n, err := w.Check(ctx)
		if err != nil || n != want.n {
			t.Fatalf("check %d: %d, %v", i, n, err)
		}
		if got := w.Warning() != ""; got != want.warning {
			t.Errorf("check %d (%d): warning %v, want %v", i, n, got, want.warning)
		}
		if got := strings.Count(logs.String(), "filing threshold reached"); got != want.crossed {
			t.Errorf("check %d (%d): %d crossing lines, want %d", i, n, got, want.crossed)
		}
		var m dto.Metric
		if err := w.Metric().Write(&m); err != nil || m.GetGauge().GetValue() != float64(n) {
			g := m.GetGauge().GetValue()
			t.Errorf("metric %v, want %d", g, n)
		}
		if fams, err := reg.Gather(); err != nil || len(fams) != 1 || fams[0].GetName() != "trustid_face_template_people" {
			t.Errorf("registry: %v %v", fams, err)
		}
	}
	c.err = errors.New("store down")
	if _, err := w.Check(ctx); err == nil {
		t.Fatal("a failed count was not reported")
	}
}

// TestAboveAtStart: a service started above the threshold logs it once.
func TestAboveAtStart(t *testing.T) {
	var logs bytes.Buffer
	w, err := filing.New(filing.Config{Templates: &counts{n: []int64{3}}, Threshold: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := w.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "filing threshold reached"); n != 1 || !strings.Contains(w.Warning(), "3 people") {
		t.Fatalf("%d lines, warning %q", n, w.Warning())
	}
}

// TestCountsTheStore: the real store's count of people (not templates).
func TestCountsTheStore(t *testing.T) {
	ctx := context.Background()
	st := sqlitetest.Open(t)
	for i, id := range []string{"a", "b"} {
		if err := st.Citizens().Create(ctx, &store.Citizen{ID: id, IDNumber: "11010119900307123" + string(rune('0'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	for i, cit := range []string{"a", "a", "b"} {
		if err := st.Templates().Create(ctx, &store.Template{ID: "t" + string(rune('0'+i)), CitizenID: cit, Kind: store.TemplateLive, ModelVersion: "x", Vector: []float32{1}}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := filing.New(filing.Config{Templates: st.Templates(), Threshold: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Check(ctx); err != nil || n != 2 || w.Warning() == "" {
		t.Fatalf("count %d, %v, warning %q", n, err, w.Warning())
	}
}
