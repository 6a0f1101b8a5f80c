"""End-to-end jobs over many inputs: per-item records, bad items reported, batch goes on."""
