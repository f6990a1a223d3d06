// Package certs benchmarks online net certificate verification on the real
// backends: the embedded SQLite store with the in-process ephemeral store,
// and PostgreSQL with Redis (when TRUSTID_TEST_POSTGRES and
// TRUSTID_TEST_REDIS name servers; each run uses a fresh schema and a random
// key prefix). Run:
//
//	go test -run XXX -bench . -benchtime 2000x ./bench/certs
//
// Each verification is the full online path: Base45/zlib/COSE parsing, two
// ES256 verifications, replay SetNX, certificate and citizen reads and the
// audit append. Results go to certs/RESULTS.md.
package certs
