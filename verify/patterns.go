package verify

// CheckPattern checks a reference pattern as the policy checks its paths:
// "*" matches any run of characters ("/" and ":" included), "?" one, and a
// repository segment may not be empty, "." or "..". Import's --include and
// --exclude use the same rules, so that a pattern selects at import exactly
// what it would cover in the policy.
func CheckPattern(g string) error { return checkGlob(g) }

// MatchPatterns reports whether ref matches any of the patterns, as policy
// paths match; a reference that is not a clean name matches nothing.
func MatchPatterns(patterns []string, ref string) bool { return matchAny(patterns, ref) }
