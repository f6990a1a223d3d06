package face

import "math"

// arcface is the ArcFace 112x112 five-point template (left eye, right eye,
// nose tip, left and right mouth corners).
var arcface = [5][2]float64{
	{38.2946, 51.6963}, {73.5318, 51.5014}, {56.0252, 71.7366},
	{41.5493, 92.3655}, {70.7299, 92.2041},
}

// Similarity is a 2x3 matrix [a -b tx; b a ty] mapping image points to the
// aligned crop.
type Similarity [2][3]float64

// Umeyama fits the least-squares similarity transform (rotation, uniform
// scale, translation: 4 degrees of freedom) taking src onto dst (Umeyama
// 1991, the 2-D closed form). Written by hand because gocv's
// EstimateAffinePartial2D is a robust (RANSAC/LMedS) estimator, not the plain
// least-squares fit the reference pipeline uses.
func Umeyama(src, dst [5][2]float64) Similarity {
	var ms, md [2]float64
	for i := range src {
		ms[0] += src[i][0] / 5
		ms[1] += src[i][1] / 5
		md[0] += dst[i][0] / 5
		md[1] += dst[i][1] / 5
	}
	// With centred points, the optimal [a, b] is (sum(d.s), sum(d x s)) / sum(|s|^2)
	// which is the 2-D special case of Umeyama's SVD solution (no reflection).
	var num1, num2, den float64
	for i := range src {
		sx, sy := src[i][0]-ms[0], src[i][1]-ms[1]
		dx, dy := dst[i][0]-md[0], dst[i][1]-md[1]
		num1 += sx*dx + sy*dy
		num2 += sx*dy - sy*dx
		den += sx*sx + sy*sy
	}
	if den == 0 {
		return Similarity{{1, 0, md[0] - ms[0]}, {0, 1, md[1] - ms[1]}}
	}
	a, b := num1/den, num2/den
	tx := md[0] - (a*ms[0] - b*ms[1])
	ty := md[1] - (b*ms[0] + a*ms[1])
	return Similarity{{a, -b, tx}, {b, a, ty}}
}

// AlignTransform is the similarity from five image points to the template.
func AlignTransform(five [5]Point) Similarity {
	var src [5][2]float64
	for i, p := range five {
		src[i] = [2]float64{float64(p.X), float64(p.Y)}
	}
	return Umeyama(src, arcface)
}

// AlignResidual is the root-mean-square distance, in template pixels,
// between the template's five points and five image points mapped by m
// (their AlignTransform). A frontal face fits the template to within a few
// pixels; landmarks found on the wrong structures (a half profile, a crop
// that cut the face) do not.
func AlignResidual(five [5]Point, m Similarity) float64 {
	var sum float64
	for i, p := range five {
		x := m[0][0]*float64(p.X) + m[0][1]*float64(p.Y) + m[0][2]
		y := m[1][0]*float64(p.X) + m[1][1]*float64(p.Y) + m[1][2]
		dx, dy := x-arcface[i][0], y-arcface[i][1]
		sum += dx*dx + dy*dy
	}
	return math.Sqrt(sum / 5)
}

// FivePoints reduces the 68-point layout to the five alignment points
// (0-based indices): eyes = mean of the four lid points, nose tip = 30,
// mouth corners = mean of outer and inner corner.
func FivePoints(lm *[68]Point) [5]Point {
	mean := func(idx ...int) Point {
		var x, y float32
		for _, i := range idx {
			x += lm[i].X
			y += lm[i].Y
		}
		n := float32(len(idx))
		return Point{x / n, y / n}
	}
	return [5]Point{
		mean(37, 38, 40, 41),
		mean(43, 44, 46, 47),
		lm[30],
		mean(48, 60),
		mean(54, 64),
	}
}

// EstimatePose gives a rough head pose in degrees from the five points:
// roll from the eye line, yaw from the nose offset against the eye and
// mouth midlines, pitch from where the nose sits between eyes and mouth.
// It is a cheap geometric cue for the quality gate, not a calibrated angle.
func EstimatePose(five [5]Point) Pose {
	le, re, n, lm, rm := five[0], five[1], five[2], five[3], five[4]
	dx, dy := float64(re.X-le.X), float64(re.Y-le.Y)
	iod := math.Hypot(dx, dy)
	if iod < 1e-6 {
		return Pose{Yaw: 90}
	}
	roll := math.Atan2(dy, dx) * 180 / math.Pi
	// Express nose and mouth in the eye-aligned frame, unit = eye distance.
	c, s := dx/iod, dy/iod
	rot := func(p Point) (float64, float64) {
		x, y := float64(p.X-le.X), float64(p.Y-le.Y)
		return (x*c + y*s) / iod, (-x*s + y*c) / iod
	}
	nx, ny := rot(n)
	mlx, mly := rot(lm)
	mrx, mry := rot(rm)
	mx, my := (mlx+mrx)/2, (mly+mry)/2
	mid := (0.5 + mx) / 2 // midline between eye centre and mouth centre
	// Turning by y moves the nose tip sideways by about 0.6 sin(y) eye
	// distances from the eye-mouth midline.
	off := clamp((nx-mid)/0.6, -1, 1)
	yaw := math.Asin(off) * 180 / math.Pi
	// On the ArcFace template (a frontal face) the nose tip sits at 49.5 % of
	// the eye-to-mouth height; the tip stands about 0.6 eye distances in front
	// of the eye-mouth plane, so tilting by p moves the ratio by about
	// 0.6 sin(p) / 1.15 = 0.52 sin(p).
	pitch := 0.0
	if my > 1e-6 {
		pitch = math.Asin(clamp((ny/my-0.495)/0.52, -1, 1)) * 180 / math.Pi
	}
	return Pose{Yaw: yaw, Pitch: pitch, Roll: roll}
}

func clamp(v, lo, hi float64) float64 {
	return math.Max(lo, math.Min(hi, v))
}

// Cosine is the cosine similarity of two embeddings (the dot product when
// both are L2-normalised, as the engine's are).
func Cosine(a, b []float32) float32 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return float32(dot / math.Sqrt(na*nb))
}

func l2normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
}
