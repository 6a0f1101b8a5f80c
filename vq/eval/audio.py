"""`vq eval audio`: audio fingerprints on edited soundtracks: landmarks, the learned
fingerprint (`vq-audiofp`) and Chromaprint.

The question the audio issue asks first: which fingerprint finds a soundtrack that was
kept under a new picture and edited (noise or a music bed underneath, EQ, a low-bitrate
re-encode, a speed change)? Built from source recordings (`--sources`: audio files or
videos with sound; each decoded to 16 kHz mono, at most `--max-seconds`):

* every source is a reference, fingerprinted whole;
* each source gives `--per-source` queries: a `--seconds` crop at a random start, through
  one edit family's seeded chain (`vq.synth.audio`), the families in turn;
* every query is scored against every reference. The true source's score is a positive;
  the other references' scores are negatives (different recordings, some of them the very
  beds laid under other queries).

Reported per method and edit family: TPR at 1 % FPR (one threshold per method, from all its
negatives), top-1 (the true source scores best), and offset accuracy (the alignment
within 0.25 s of the crop's start; speed changes excluded, where one offset cannot hold).
The learned fingerprint (`--learned`, default `vq-audiofp`: a vector per second of log-mel,
`vq train audiofp`) and Chromaprint (`fpcalc`, Debian's `libchromaprint-tools`, matched the
way AcoustID compares fingerprints: the best bit agreement over offsets) run beside it on
the same queries. The learned model trained on some of these recordings: its card names
them, and its held-out figures come from the rest (`vq train audiofp`'s evaluation).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vq.errors import UsageError
from vq.eval.base import Evaluator, Report, Table, Ui

RATE = 16000
CHROMAPRINT_ITEM = 4096 / 3 / 11025  # seconds per Chromaprint item (hop 1365.3 samples at 11025 Hz)
OFFSET_TOLERANCE = 0.25
NOT_MEDIA = {".json", ".txt", ".md"}  # beside recordings in a gathered folder (its manifest)


@dataclass
class AudioOptions:
    sources: list[Path] = field(
        metadata={"help": "Audio files or videos with sound (folders or files).", "required": True}
    )
    per_source: int = field(default=6, metadata={"help": "Edited queries per source."})
    seconds: float = field(default=8.0, metadata={"help": "Length of a query crop."})
    max_seconds: float = field(default=60.0, metadata={"help": "Longest stretch of a source used."})
    baselines: str = field(default="chromaprint", metadata={"help": "Comma list: chromaprint, or ''."})
    learned: str = field(
        default="vq-audiofp",
        metadata={"help": "Learned fingerprint model (`vq train audiofp`) run beside the landmarks, or ''."},
    )
    seed: int = field(default=0, metadata={"help": "Seed for the crops and edits."})


@dataclass
class Query:
    source: int
    start: float
    family: str
    edits: list[dict[str, Any]]
    samples: np.ndarray


def load_recordings(paths: list[Path], max_seconds: float, ui: Ui) -> list[tuple[str, np.ndarray]]:
    """(name, 16 kHz mono samples) of every file with usable sound; others noted and skipped."""
    from vq.errors import MediaError
    from vq.media.audio import decode_audio

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and not f.name.startswith(".") and f.suffix not in NOT_MEDIA
            )
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"--sources {p}: no such file or folder")
    out = []
    for f in files:
        try:
            x = decode_audio(f, RATE, max_seconds=max_seconds)
        except MediaError as e:
            ui.note(f"skipped {f.name}: {e}".replace(str(f), f.name), warn=True)
            continue
        if len(x) < RATE * 4 or float(np.sqrt(np.mean(x**2))) < 1e-3:
            ui.note(f"skipped {f.name}: under 4 s of sound", warn=True)
            continue
        out.append((f.name, x))
    return out


def make_queries(recordings, per_source: int, seconds: float, seed: int, ui: Ui) -> list[Query]:
    from vq.synth.audio import FAMILIES, apply_audio, random_audio_chain

    rng = np.random.default_rng(seed)
    beds = [x for _, x in recordings]
    queries = []
    jobs = [(s, k) for s in range(len(recordings)) for k in range(per_source)]
    for s, k in ui.track(jobs, len(jobs), "editing queries"):
        x = recordings[s][1]
        family = FAMILIES[(s + k) % len(FAMILIES)]
        start = float(rng.uniform(0, max(0.0, len(x) / RATE - seconds)))
        crop = x[int(start * RATE) : int((start + seconds) * RATE)]
        chain = random_audio_chain(rng, family, len(beds))
        # A bed is never the query's own source.
        for e in chain:
            if e.kind == "bed" and e.params["bed"] == s:
                e.params["bed"] = (s + 1) % len(beds)
        queries.append(
            Query(s, start, family, [e.describe() for e in chain], apply_audio(crop, RATE, chain, beds))
        )
    return queries


# -- methods --------------------------------------------------------------------------------


class Landmarks:
    """`vq.audio.landmarks`; with `speed_search` the query is tried at every speed of the
    grid (references are fingerprinted once, as recorded)."""

    def __init__(self, speed_search: bool):
        self.speed_search = speed_search
        self.name = "landmarks+speed" if speed_search else "landmarks"

    def prepare(self, x: np.ndarray) -> Any:
        from vq.audio.landmarks import fingerprint

        return fingerprint(x)

    def prepare_query(self, x: np.ndarray) -> Any:
        from vq.audio.landmarks import speed_fingerprints

        return speed_fingerprints(x) if self.speed_search else self.prepare(x)

    def compare(self, query: Any, ref: Any) -> tuple[float, float]:
        from vq.audio.landmarks import match, match_speeds

        m = match_speeds(query, ref) if self.speed_search else match(query, ref)
        return m.score, m.offset


class LearnedFp:
    """A learned fingerprint (`vq.stages.audio_fingerprint`): `vectors` gives a vector per
    1 s window every 0.5 s, and two recordings compare along a common offset (`match`).
    `from_model` runs an exported `vq train audiofp` model; the training task passes the
    model it is training."""

    def __init__(self, name: str, vectors: Callable[[np.ndarray], np.ndarray]):
        self.name, self.vectors = name, vectors

    @classmethod
    def from_model(cls, model: str) -> LearnedFp:
        from vq.stages.audio_fingerprint import AudioFingerprinter

        stage = AudioFingerprinter(model, backend="ort-cpu").open()
        return cls(stage.name, stage.vectors)

    def prepare(self, x: np.ndarray) -> np.ndarray:
        return self.vectors(x)

    def prepare_query(self, x: np.ndarray) -> np.ndarray:
        return self.prepare(x)

    def compare(self, query: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
        from vq.stages.audio_fingerprint import match

        return match(query, ref)


class Chromaprint:
    """`fpcalc -raw` fingerprints; a pair's score is 1 - the lowest bit error rate over
    offsets where at least half the query overlaps the reference."""

    name = "chromaprint"

    def __init__(self):
        self.fpcalc = shutil.which("fpcalc")
        if self.fpcalc is None:
            raise UsageError(
                "the chromaprint baseline needs fpcalc (Debian: apt install libchromaprint-tools)"
            )

    def prepare(self, x: np.ndarray) -> np.ndarray:
        from vq.media.encode import write_audio

        with tempfile.TemporaryDirectory() as tmp:
            path = write_audio(Path(tmp) / "a.wav", x, RATE)
            out = subprocess.run(
                [self.fpcalc, "-raw", "-json", "-length", "0", str(path)],
                capture_output=True,
                text=True,
                timeout=120,
            )
        # fpcalc exits 3 after "Error decoding audio frame (End of file)" on complete WAVs
        # too: the fingerprint it printed is what counts.
        try:
            values = json.loads(out.stdout).get("fingerprint", [])
        except json.JSONDecodeError:
            values = []
        return np.asarray(values, np.int64).astype(np.uint32)

    def prepare_query(self, x: np.ndarray) -> np.ndarray:
        return self.prepare(x)

    def compare(self, query: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
        n, m = len(query), len(ref)
        if n == 0 or m == 0:
            return 0.0, 0.0
        least = max(1, n // 2)
        best, where = 1.0, 0
        for offset in range(-(n - least), m - least + 1):
            q0, r0 = max(0, -offset), max(0, offset)
            k = min(n - q0, m - r0)
            if k < least:
                continue
            diff = np.bitwise_xor(query[q0 : q0 + k], ref[r0 : r0 + k])
            ber = float(np.unpackbits(diff.view(np.uint8)).mean())
            if ber < best:
                best, where = ber, offset
        return 1.0 - best, where * CHROMAPRINT_ITEM


# -- the run --------------------------------------------------------------------------------


def score_method(method, recordings, queries, ui: Ui) -> dict[str, Any]:
    from vq.eval.metrics.retrieval import tpr_at_fpr

    refs = [method.prepare(x) for _, x in ui.track(recordings, len(recordings), f"{method.name}: references")]
    rows = []
    for q in ui.track(queries, len(queries), f"{method.name}: queries"):
        fp = method.prepare_query(q.samples)
        scored = [method.compare(fp, r) for r in refs]
        rows.append((q, np.array([s for s, _ in scored]), scored[q.source][1]))
    neg = np.concatenate([np.delete(s, q.source) for q, s, _ in rows])
    threshold = float(np.quantile(neg, 0.99)) if len(neg) else 0.0
    families: dict[str, dict[str, Any]] = {}
    for family in dict.fromkeys(q.family for q, _, _ in rows):
        mine = [(q, s, off) for q, s, off in rows if q.family == family]
        pos = np.array([s[q.source] for q, s, _ in mine])
        timed = [abs(off - q.start) <= OFFSET_TOLERANCE for q, _, off in mine if family != "speed"]
        families[family] = {
            "queries": len(mine),
            "tpr_at_1pct_fpr": tpr_at_fpr(pos, neg, 0.01),
            "top1": float(np.mean([int(np.argmax(s)) == q.source for q, s, _ in mine])),
            "offset_ok": float(np.mean(timed)) if timed else None,
        }
    pos = np.array([s[q.source] for q, s, _ in rows])
    return {
        "tpr_at_1pct_fpr": tpr_at_fpr(pos, neg, 0.01),
        "top1": float(np.mean([int(np.argmax(s)) == q.source for q, s, _ in rows])),
        "threshold_at_1pct_fpr": threshold,
        "families": families,
    }


def run(opts: AudioOptions, ui: Ui) -> Report:
    """TPR at 1 % FPR, top-1 and offset accuracy per edit family: landmarks vs Chromaprint."""
    chosen = [b.strip() for b in opts.baselines.split(",") if b.strip()]
    if set(chosen) - {"chromaprint"}:
        raise UsageError(f"unknown baseline(s) {sorted(set(chosen) - {'chromaprint'})}: choose chromaprint")
    if opts.per_source < 1 or opts.seconds <= 0:
        raise UsageError("--per-source must be >= 1 and --seconds > 0")
    methods: list[Any] = [Landmarks(False), Landmarks(True)]
    methods += [LearnedFp.from_model(opts.learned)] if opts.learned else []
    methods += [Chromaprint()] if chosen else []
    recordings = load_recordings(opts.sources, opts.max_seconds, ui)
    if len(recordings) < 2:
        raise UsageError(f"need at least 2 sources with sound, found {len(recordings)}")
    queries = make_queries(recordings, opts.per_source, opts.seconds, opts.seed, ui)
    results = {m.name: score_method(m, recordings, queries, ui) for m in methods}
    families = list(dict.fromkeys(q.family for q in queries))
    rows = []
    for family in [*families, "all"]:
        row: dict[str, Any] = {"family": family}
        for name, r in results.items():
            f = r if family == "all" else r["families"][family]
            row[f"{name}_tpr"] = round(f["tpr_at_1pct_fpr"], 3)
            row[f"{name}_top1"] = round(f["top1"], 3)
            if family != "all":
                row[f"{name}_offset"] = None if f["offset_ok"] is None else round(f["offset_ok"], 3)
        rows.append(row)
    columns = [("family", "edit family")]
    for name in results:
        columns += [
            (f"{name}_tpr", f"{name} TPR@1%FPR"),
            (f"{name}_top1", "top-1"),
            (f"{name}_offset", "offset ok"),
        ]
    data = {
        "sources": [n for n, _ in recordings],
        "queries": [
            {
                "source": recordings[q.source][0],
                "start": round(q.start, 3),
                "family": q.family,
                "edits": q.edits,
            }
            for q in queries
        ],
        "params": {"per_source": opts.per_source, "seconds": opts.seconds, "seed": opts.seed},
        "methods": results,
    }
    return Report(
        [Table(f"audio fingerprints, {len(recordings)} sources, {len(queries)} queries", columns, rows)], data
    )


EVALUATOR = Evaluator(
    summary="audio fingerprints on edited soundtracks: landmarks vs the learned one and Chromaprint "
    "(TPR at 1% FPR, top-1)",
    options=AudioOptions,
    run=run,
)
