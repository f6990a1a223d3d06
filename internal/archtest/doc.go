// Package archtest holds repository-wide tests of the code's shape: which
// package may import each heavy or native dependency, which packages may not
// depend on each other, and that every package documents what it owns.
package archtest
