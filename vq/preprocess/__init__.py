"""Frame preprocessing on the runtime path: pure numpy, vectorised, no JAX."""
