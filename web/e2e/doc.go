// Package e2e drives the real trustid binary with headless Chromium: a full
// OIDC login from a relying app through the face login page (fake camera
// and microphone fed with a real GRID talking-face clip, its own voice, cut by
// lab/fakeclip.BuildReal, under the test-only one-digit challenge), the
// refusals of a still-photo feed and of the face with another voice, the
// net certificate put on the browser (non-extractable WebCrypto key), its QR
// shown with the network cut and verified at the verifier desk page in
// another browser context, forged, stale and revoked presentations refused
// (online and by the offline verifier), and screenshots of every page at phone and
// desktop sizes in English and Chinese (artifacts/screenshots).
package e2e
