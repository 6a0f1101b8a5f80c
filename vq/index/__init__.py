"""The dedup library: faiss index over frame vectors + SQLite catalog (see `library.py`)."""

from vq.index.library import Library, LibraryConfig, LibraryError, open_library

__all__ = ["Library", "LibraryConfig", "LibraryError", "open_library"]
