"""Property-based tests (hypothesis), each beside a plain example test."""
