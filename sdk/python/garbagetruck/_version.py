"""The SDK's version: a copy of the repository's top-level VERSION file,
which tests/check-version keeps equal."""
__version__ = "0.1.0"
