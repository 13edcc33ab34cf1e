"""A corpus of real notebooks, fetched from the package index by MANIFEST.toml (see README.md)."""
