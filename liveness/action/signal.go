package action

import (
	"math"
	"time"
)

// Point is a mesh point in frame pixels (the mesh's depth is not used: a
// depth the model infers from a photo would follow the photo).
type Point struct{ X, Y float64 }

// MeshPoints is the number of points Measure expects (MediaPipe's face
// mesh, liveness/facemesh).
const MeshPoints = 468

// Mesh point indexes (MediaPipe's canonical face mesh; "left" and "right"
// are the citizen's own).
var (
	// Eye contours, in order around the eye.
	rightEye = []int{33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7}
	leftEye  = []int{263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249}
	// Inner lip contour, in order.
	innerLips = []int{78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95}
)

const (
	rightEyeOuter = 33
	leftEyeOuter  = 263
	foreheadTop   = 10
	noseTip       = 1
	rightCheek    = 234 // face outline at the citizen's right cheek (image left)
	leftCheek     = 454
)

// Signal is what one frame shows of the face.
type Signal struct {
	T time.Duration
	// Face is false when the frame had no usable mesh; the measures are
	// then zero and ignored.
	Face bool
	// Eye is the area of both eye openings over the area of the triangle
	// of the outer eye corners and the top of the forehead.
	Eye float64
	// Mouth is the area inside the lips over the same triangle.
	Mouth float64
	// Yaw and Pitch are the nose tip's coordinates in the affine frame
	// of the face outline: origin midway between the cheeks, one axis to
	// the citizen's left cheek, the other to the top of the forehead. Yaw
	// grows toward the left cheek, Pitch toward the forehead.
	Yaw, Pitch float64
}

// Measure computes the signals of one frame's mesh (MeshPoints points).
// Every measure is invariant under an affine map of the picture.
func Measure(t time.Duration, pts []Point) Signal {
	if len(pts) != MeshPoints {
		return Signal{T: t}
	}
	ref := triangleArea(pts[rightEyeOuter], pts[leftEyeOuter], pts[foreheadTop])
	if !(ref > 1e-6) {
		return Signal{T: t}
	}
	s := Signal{T: t, Face: true}
	s.Eye = (polygonArea(pts, rightEye) + polygonArea(pts, leftEye)) / ref
	s.Mouth = polygonArea(pts, innerLips) / ref
	a, b, ok := faceFrame(pts[noseTip], pts[rightCheek], pts[leftCheek], pts[foreheadTop])
	if !ok {
		return Signal{T: t}
	}
	s.Yaw, s.Pitch = a, b
	return s
}

func triangleArea(a, b, c Point) float64 {
	return math.Abs((b.X-a.X)*(c.Y-a.Y)-(c.X-a.X)*(b.Y-a.Y)) / 2
}

// polygonArea is the shoelace area of the polygon through pts[idx...].
func polygonArea(pts []Point, idx []int) float64 {
	var s float64
	for i, k := range idx {
		p, q := pts[k], pts[idx[(i+1)%len(idx)]]
		s += p.X*q.Y - q.X*p.Y
	}
	return math.Abs(s) / 2
}

// faceFrame solves p = m + a (l - r) + b (f - m) with m the midpoint of r
// and l. Measuring from the midpoint keeps the two axes apart: a nod moves
// the nose tip along f - m and leaves a alone (from r, it would move a too).
func faceFrame(p, r, l, f Point) (a, b float64, ok bool) {
	mx, my := (r.X+l.X)/2, (r.Y+l.Y)/2
	ux, uy := l.X-r.X, l.Y-r.Y
	vx, vy := f.X-mx, f.Y-my
	det := ux*vy - vx*uy
	if math.Abs(det) < 1e-9 {
		return 0, 0, false
	}
	wx, wy := p.X-mx, p.Y-my
	return (wx*vy - vx*wy) / det, (ux*wy - wx*uy) / det, true
}
