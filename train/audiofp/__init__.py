"""The learned audio fingerprint: a vector per second of sound, trained on edited recordings."""
