"""The binary-code stage: embedding vectors to packed codes for faiss's binary indexes.

Runs a `vq train hash` model (`vq-hash`): float vectors (N, D) in, (N, bits) scores out,
whose signs are the bits, packed 8 to a byte (faiss's binary layout: `IndexBinary*`
compare them by XOR + popcount).
"""

from __future__ import annotations

import numpy as np

from vq.stages.base import Stage


class Hasher(Stage):
    task = "hash"

    def __init__(self, model=None, backend: str = "ort-cpu", batch: int = 4096):
        super().__init__(model, backend)
        self.bits = int(self.card.outputs[0].shape[-1])
        self.dim = int(self.card.inputs[0].shape[-1])
        self.batch = batch

    def codes(self, vectors: np.ndarray) -> np.ndarray:
        """float (N, dim) -> uint8 (N, bits / 8)."""
        vectors = np.ascontiguousarray(vectors, np.float32)
        out = np.empty((len(vectors), self.bits // 8), np.uint8)
        name, output = self.card.inputs[0].name, self.card.outputs[0].name
        for start in range(0, len(vectors), self.batch):
            scores = self.run({name: vectors[start : start + self.batch]})[output]
            out[start : start + len(scores)] = np.packbits(scores > 0, axis=1)
        return out
