"""Encoding decisions from the quality score: rate-quality hulls, rung choice, the
device-cloud post-processing decision (`vq ladder`, `vq eval ladder`)."""
