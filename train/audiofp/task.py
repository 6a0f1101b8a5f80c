"""The learned audio fingerprint task: a 1 s log-mel window to a unit vector that edits keep.

Data: the training recordings (a hash of the name keeps `holdout` of them out), each
decoded to 16 kHz mono and put through `versions` seeded `vq.synth.audio` chains, every
edit family in turn (noise, a music bed of another training recording, EQ, a real AAC /
Opus / MP3 re-encode, a speed change of 3-10 %, and the stacked re-upload). A pair is a
window of the original and the window of an edited version that plays the same moment,
up to a quarter second off (a query's windows fall anywhere between the library's),
through the speed change when there is one.

Loss: symmetric InfoNCE over the batch (the other rows -- other recordings, and other
moments of the same one -- are the negatives).

Evaluation on the held-out recordings, beside the landmark fingerprint in the same run
and on the same queries (`vq.eval.audio`: 8 s crops, each edit family in turn): TPR at
1 % FPR and top-1, overall and per family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vq.errors import UsageError
from vq.eval.base import QuietUi
from vq.media.sources import held_out
from vq.stages.audio_fingerprint import FRAMES, RATE, log_mel, window_vectors
from vq.train.audiofp.config import AudioFpConfig
from vq.train.models import create_model

SHIFT = 25  # frames (0.25 s): how far a pair's windows may be off


class AudioFpTask:
    name = "audiofp"
    model_name = "audio_fp"

    def __init__(self, config: AudioFpConfig):
        from vq.eval.audio import load_recordings

        if not config.data:
            raise UsageError("vq train audiofp needs --data (recordings: scripts/gather_audio.py)")
        self.seed, self.temperature, self.eval_queries = config.seed, config.temperature, config.eval_queries
        self.model_kwargs: dict[str, Any] = {"width": config.width, "dim": config.dim}
        recordings = load_recordings([Path(d) for d in config.data], config.max_seconds, QuietUi())
        train = [(n, x) for n, x in recordings if not held_out(n, config.holdout)]
        self.held = [(n, x) for n, x in recordings if held_out(n, config.holdout)]
        if len(train) < 2:
            raise UsageError(f"need at least 2 training recordings, found {len(train)}")
        self.clean, self.edited = edited_versions(train, config.versions, config.seed)
        self.data_facts = {
            "sources": [str(d) for d in config.data],
            "train_recordings": [n for n, _ in train],
            "holdout_recordings": [n for n, _ in self.held],
            "holdout_fraction": config.holdout,
            "versions_per_recording": config.versions,
            "train_seconds": round(sum(len(x) for _, x in train) / RATE, 1),
        }

    def create_model(self, seed: int) -> nnx.Module:
        return create_model(self.model_name, seed=seed, **self.model_kwargs)

    def loss(self, model: nnx.Module, batch: dict[str, jax.Array], rng: jax.Array):
        del rng
        a, b = model(batch["a"]), model(batch["b"])
        logits = a @ b.T / self.temperature
        rows = jnp.arange(a.shape[0])
        loss = 0.5 * (
            optax.softmax_cross_entropy_with_integer_labels(logits, rows).mean()
            + optax.softmax_cross_entropy_with_integer_labels(logits.T, rows).mean()
        )
        return loss, {"top1": jnp.mean(jnp.argmax(logits, axis=1) == rows)}

    def batch(self, step: int, rows: range) -> dict[str, np.ndarray]:
        a, b = [], []
        for r in rows:
            rng = np.random.default_rng((self.seed, step, r))
            i = int(rng.integers(len(self.clean)))
            mel, (other, factor) = self.clean[i], self.edited[i][int(rng.integers(len(self.edited[i])))]
            t = int(rng.integers(0, max(1, len(mel) - FRAMES)))
            shifted = (
                t + int(rng.integers(-SHIFT, SHIFT + 1))
            ) / factor  # the same moment, played `factor` faster
            u = int(np.clip(round(shifted), 0, max(0, len(other) - FRAMES)))
            a.append(_window(mel, t))
            b.append(_window(other, u))
        return {"a": np.stack(a), "b": np.stack(b)}

    def evaluate(self, model: nnx.Module) -> dict[str, float]:
        if len(self.held) < 2:
            return {}
        from vq.eval.audio import Landmarks, LearnedFp, make_queries, score_method

        queries = make_queries(self.held, self.eval_queries, 8.0, self.seed, QuietUi())
        out: dict[str, float] = {}

        def embed(windows: np.ndarray) -> jax.Array:
            return model(jnp.asarray(windows))

        methods = {
            "learned": LearnedFp("learned", lambda x: window_vectors(x, embed)),
            "landmarks": Landmarks(False),
            "landmarks_searched": Landmarks(True),
        }
        for key, method in methods.items():
            result = score_method(method, self.held, queries, QuietUi())
            out[f"holdout_{key}_tpr"] = result["tpr_at_1pct_fpr"]
            out[f"holdout_{key}_top1"] = result["top1"]
            for family, f in result["families"].items():
                out[f"holdout_{key}_family_{family}_tpr"] = f["tpr_at_1pct_fpr"]
        return out


def _window(mel: np.ndarray, start: int) -> np.ndarray:
    w = mel[start : start + FRAMES]
    if len(w) < FRAMES:
        w = np.pad(w, ((0, FRAMES - len(w)), (0, 0)), mode="edge")
    return w


def edited_versions(
    recordings: list[tuple[str, np.ndarray]], versions: int, seed: int
) -> tuple[list[np.ndarray], list[list[tuple[np.ndarray, float]]]]:
    """Each recording's log-mel, and `versions` edited versions' (log-mel, speed factor)."""
    from vq.synth.audio import FAMILIES, apply_audio, random_audio_chain

    beds = [x for _, x in recordings]
    clean, edited = [], []
    for i, (_, x) in enumerate(recordings):
        clean.append(log_mel(x))
        mine = []
        for v in range(versions):
            rng = np.random.default_rng((seed, 7, i, v))
            chain = random_audio_chain(rng, FAMILIES[(i + v) % len(FAMILIES)], len(beds))
            for e in chain:  # a bed is never the recording itself
                if e.kind == "bed" and e.params["bed"] == i:
                    e.params["bed"] = (i + 1) % len(beds)
            factor = float(np.prod([e.params["factor"] for e in chain if e.kind == "speed"] or [1.0]))
            mine.append((log_mel(apply_audio(x, RATE, chain, beds)), factor))
        edited.append(mine)
    return clean, edited
