"""Learned binary codes for the library: a hashing head on embedding vectors."""
