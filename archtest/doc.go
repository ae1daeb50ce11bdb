// Package archtest holds tests of the repository's shape rather than its
// behaviour: which packages the deployed functions may depend on.
package archtest
