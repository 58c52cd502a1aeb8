package garbagetruck

// Version is this SDK's version: a copy of the repository's top-level
// VERSION file, which tests/check-version keeps equal.
const Version = "0.1.0"
