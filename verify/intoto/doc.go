// Package intoto verifies an in-toto supply chain (a signed root layout and
// the link metadata of its steps) as CNAB Security (spec 300-303) asks of a
// bundle, without running anything by default.
//
// in-toto-golang's InTotoVerify always executes the layout's inspections
// (arbitrary commands named by the layout) and checks expiry against the wall
// clock, neither of which suits an air-gapped importer. Verify composes
// in-toto-golang's exported steps instead: layout signatures over a threshold
// of out-of-band keys, expiry against a caller-given time, link signatures
// and thresholds per step, sublayouts (recursively, under the same rules,
// at most MaxSublayoutDepth deep; a sublayout's links are named
// "<step>.<keyid8>/<substep>.<keyid8>.link" and only ever looked up by name),
// command alignment (a warning, as in in-toto), artifact rules, and finally
// that the last step's products contain the artifacts the caller holds (for
// CNAB: bundle.json by its sha256). Inspections are reported as not run
// unless the caller opts in, in which case a layout's inspections run one
// after another in a fresh temporary directory, each under a timeout.
//
// A refusal wraps ErrVerification; any other error is operational.
package intoto
