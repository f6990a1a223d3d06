package face

import (
	"context"
	"errors"
	"image/color"
	"testing"
)

// fuzzSeeds are the table cases' inputs: valid JPEG and PNG, truncations,
// a bomb header, non-images.
func fuzzSeeds(f *testing.F) {
	jpg := testdata(f, lfwImage)
	pngData := plainPNG(f, 32, 24, color.Gray{Y: 90})
	for _, s := range [][]byte{
		jpg, jpg[:len(jpg)/2], jpg[:600], jpg[:len(jpg)-2],
		pngData, pngData[:len(pngData)-6], pngWithHeaderSize(f, 60000, 60000),
		{0xFF, 0xD8, 0xFF}, []byte("GIF89a"), []byte("not an image"), nil,
	} {
		f.Add(s)
	}
}

// FuzzCheck: the header check never panics and its errors are the
// documented sentinels.
func FuzzCheck(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, err := Check(data, Limits{MaxPixels: 4_000_000})
		if err != nil && !errors.Is(err, ErrUnsupportedFormat) && !errors.Is(err, ErrTooLarge) &&
			!errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("undocumented error %v", err)
		}
	})
}

// FuzzProcess drives the whole decode path (Go header check, OpenCV
// decoder, pipeline) with mutated bytes; it must return, not crash.
func FuzzProcess(f *testing.F) {
	fuzzSeeds(f)
	e := testEngine(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := e.Process(context.Background(), data, Options{Embedding: true})
		if err == nil && len(res.Embedding) != EmbeddingSize {
			t.Fatalf("success without an embedding")
		}
	})
}
