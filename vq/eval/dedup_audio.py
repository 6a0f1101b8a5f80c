"""The audio cases of `vq eval dedup` (`--suite audio --audio DIR`): the soundtrack as evidence.

Built on the held-out suite's clips (`vq.eval.dedup.plan_clips`), with recordings from
`--audio` (`scripts/gather_audio.py`: music, speech, soundtracks) as soundtracks:

* every reference clip gets a recording of its own, from its start (so the library holds
  picture and sound), first those the learned fingerprint never trained on
  (`unheard_first`: a find on its training music says nothing about new music); the
  recordings left over are the unrelated sounds below;
* **sound_kept** (per reference): another clip's picture over the reference's soundtrack,
  edited by one `vq.synth.audio` family in turn (noise, music bed, EQ, re-encode, stack) --
  a slideshow over someone's song; only the sound can find it;
* **sound_sped** (per reference): the same with the soundtrack played 3-10 % faster or
  slower (pitch moving with it, as a sped-up video's does) -- found only by the speed
  search (`DedupConfig.audio_speed_seconds`); drawn from a child of the suite's seed, so
  the other kinds are the queries they were before this kind existed;
* **sound_replaced** (per reference): the reference's picture, lightly edited, over an
  unrelated recording -- the picture must still find it;
* **reversed** (per reference): the reference's picture played backwards, silent;
* negatives (per non-reference clip): **silent** (no sound), **music_free** (room noise
  and mains hum), **unrelated** (a recording no reference carries).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vq import synth
from vq.errors import UsageError

RATE = 16000
SOUND_FAMILIES = ("noise", "bed", "eq", "reencode", "stack")
AUDIO_SUITE_VERSION = 3  # 2: sound_sped added; 3: references carry unheard recordings first


def heard_by(model: str | None) -> list[str]:
    """The recordings (file names) the learned fingerprint `model` trained on, from its
    card; none for no model."""
    if not model:
        return []
    from vq.models import load_model

    data = load_model(model).card.training.get("data", {})
    return sorted(data.get("train_recordings", []))


def unheard_first(recordings: list[tuple[str, np.ndarray]], heard: list[str]) -> list[tuple[str, np.ndarray]]:
    """`recordings` with those not in `heard` first, each group in its own order."""
    known = set(heard)
    return [r for r in recordings if r[0] not in known] + [r for r in recordings if r[0] in known]


def sounded(picture: str | Path, dest: Path, samples: np.ndarray | None, fps: float) -> None:
    """`picture`'s frames with `samples` (16 kHz mono) as the soundtrack (None: silent)."""
    from vq.media import open_video
    from vq.media.encode import write_audio, write_video

    with open_video(picture) as video:
        frames = video.sample(fps=fps)
    if samples is None:
        write_video(dest, frames.images, fps)
        return
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_audio(Path(tmp) / "sound.wav", samples, RATE)
        write_video(dest, frames.images, fps, audio_from=wav)


def room_tone(seconds: float, seed: int) -> np.ndarray:
    """Quiet room noise with a mains hum: sound that is nobody's recording."""
    t = np.arange(int(seconds * RATE)) / RATE
    noise = 0.004 * np.random.default_rng(seed).standard_normal(len(t))
    return (noise + 0.03 * np.sin(2 * np.pi * 50 * t) + 0.015 * np.sin(2 * np.pi * 150 * t)).astype(
        np.float32
    )


def add_sound_to_references(refs, recordings, work: Path, fps: float) -> list[np.ndarray]:
    """Give reference k recording k (from its start) and re-point it at the sounded clip;
    returns each reference's soundtrack."""
    tracks = []
    for k, ref in enumerate(refs):
        samples = recordings[k][1][: int((ref.end - ref.start) * RATE)]
        dest = work / "clips" / f"{ref.id}-sound.mp4"
        sounded(ref.path, dest, samples, fps)
        ref.path = str(dest)
        tracks.append(samples)
    return tracks


def audio_query_jobs(refs, others, recordings, rng, work: Path, fps: float, Query: type) -> list[Callable]:
    """The audio suite's queries (see the module docstring); `Query` is `vq.eval.dedup.Query`
    (passed in: this module is imported by that one)."""
    from vq.synth.audio import apply_audio, random_audio_chain

    if len(recordings) < len(refs) + 2:
        raise UsageError(
            f"the audio suite needs a recording per reference plus 2 spare: {len(refs)} references, "
            f"{len(recordings)} recordings with sound"
        )
    tracks = add_sound_to_references(refs, recordings, work, fps)
    spare = [x for _, x in recordings[len(refs) :]]
    speed_rng = rng.spawn(1)[0]  # leaves `rng`'s draws (the other kinds) as they were
    jobs: list[Callable] = []
    for k, ref in enumerate(refs):
        host = others[k % len(others)]
        family = SOUND_FAMILIES[k % len(SOUND_FAMILIES)]
        chain = random_audio_chain(rng, family, len(spare))
        length = min(host.end - host.start, ref.end - ref.start)
        start = float(rng.uniform(0.0, max(0.0, (ref.end - ref.start) - length)))
        replacement = spare[k % len(spare)]
        light = str(rng.choice(["border", "watermark", "color", "reencode"]))
        edits = [synth.random_edit(light, rng, ref.size)]

        def kept(ref=ref, host=host, chain=chain, start=start, length=length, k=k, family=family):
            qid = f"sound_kept-{ref.id}-{family}"
            crop = tracks[k][int(start * RATE) : int((start + length) * RATE)]
            path = work / "queries" / f"{qid}.mp4"
            sounded(host.path, path, apply_audio(crop, RATE, chain, spare), fps)
            truth = {"ref_id": ref.id, "query_start": 0.0, "query_end": length}
            truth |= {"ref_start": start, "ref_end": start + length}
            return Query(qid, str(path), "sound_kept", [family], [truth])

        def replaced(ref=ref, edits=edits, light=light, replacement=replacement):
            qid = f"sound_replaced-{ref.id}-{light}"
            path = work / "queries" / f"{qid}.mp4"
            with tempfile.TemporaryDirectory() as tmp:
                picture = Path(tmp) / "picture.mp4"
                record = synth.render(ref.path, picture, edits, audio=False)
                sounded(picture, path, replacement[: int((ref.end - ref.start) * RATE)], fps)
            truth = [
                {"ref_id": ref.id, "query_start": q0, "query_end": q1, "ref_start": r0, "ref_end": r1}
                for q0, q1, r0, r1 in record.segments
            ]
            return Query(qid, str(path), "sound_replaced", [light], truth)

        def backwards(ref=ref):
            qid = f"reversed-{ref.id}"
            path = work / "queries" / f"{qid}.mp4"
            record = synth.render(ref.path, path, [synth.Reverse()], audio=False)
            truth = [
                {"ref_id": ref.id, "query_start": q0, "query_end": q1, "ref_start": r0, "ref_end": r1}
                for q0, q1, r0, r1 in record.segments
            ]
            return Query(qid, str(path), "reversed", ["reverse"], truth)

        (speed,) = random_audio_chain(speed_rng, "speed", 0)
        factor = float(speed.params["factor"])
        sped_host = others[(k + 1) % len(others)]
        heard = min(ref.end - ref.start, (sped_host.end - sped_host.start) * factor)  # reference seconds
        sped_start = float(speed_rng.uniform(0.0, max(0.0, (ref.end - ref.start) - heard)))

        def sped(ref=ref, host=sped_host, speed=speed, start=sped_start, heard=heard, k=k, factor=factor):
            qid = f"sound_sped-{ref.id}-{factor:.3f}x"
            crop = tracks[k][int(start * RATE) : int((start + heard) * RATE)]
            path = work / "queries" / f"{qid}.mp4"
            sounded(host.path, path, apply_audio(crop, RATE, [speed], spare), fps)
            truth = {"ref_id": ref.id, "query_start": 0.0, "query_end": heard / factor}
            truth |= {"ref_start": start, "ref_end": start + heard}
            return Query(qid, str(path), "sound_sped", ["speed"], [truth])

        jobs += [kept, sped, replaced, backwards]
    ref_videos = {r.source for r in refs}
    for k, other in enumerate(others):
        seconds = other.end - other.start
        look_alike = other.source in ref_videos  # another moment of a reference's video
        unrelated = spare[(k + 1) % len(spare)][: int(seconds * RATE)]
        for kind, samples in (
            ("silent", None),
            ("music_free", room_tone(seconds, k)),
            ("unrelated", unrelated),
        ):

            def negative(other=other, kind=kind, samples=samples, look_alike=look_alike):
                qid = f"{kind}-{other.id}"
                path = work / "queries" / f"{qid}.mp4"
                sounded(other.path, path, samples, fps)
                return Query(qid, str(path), kind, [kind], [], look_alike)

            jobs.append(negative)
    return jobs


# -- Chromaprint through the same queries (the audio baseline) ------------------------------------

# `vq eval audio --sources runs/audio`'s Chromaprint threshold at 1 % false positives (0.766,
# benchmarks/results/audio-fingerprints.json): one bit agreement for every query, as
# AcoustID-style matching has; the landmarks' thresholds were set on the same recordings.
CHROMAPRINT_MATCH = 0.766


def run_chromaprint(bench, progress: Callable | None = None, threshold: float = CHROMAPRINT_MATCH) -> dict:
    """Every query's soundtrack against every reference's with Chromaprint (`fpcalc`): a
    match where the best bit agreement over offsets reaches `threshold`, its segment the
    stretch the two sounds overlap at that offset. Records shaped like `vq run`'s, so the
    suite's scoring applies unchanged."""
    import time

    from vq.errors import MediaError
    from vq.eval.audio import Chromaprint
    from vq.media.audio import decode_audio

    method = Chromaprint()
    track = progress or (lambda items, total, desc: items)

    def sound(path: str) -> tuple[np.ndarray, float] | None:
        try:
            x = decode_audio(path, RATE)
        except MediaError:  # a silent query: no audio stream
            return None
        return (method.prepare(x), len(x) / RATE) if len(x) else None

    refs = []
    for ref in track(bench.refs, len(bench.refs), "chromaprint: references"):
        refs.append((ref.id, ref.path, sound(ref.path)))
    records = []
    for q in track(bench.queries, len(bench.queries), "chromaprint: querying"):
        t0 = time.perf_counter()
        mine = sound(q.path)
        matches = []
        for ref_id, ref_path, theirs in refs:
            if mine is None or theirs is None:
                continue
            agreement, offset = method.compare(mine[0], theirs[0])  # offset: reference - query time
            if agreement < threshold:
                continue
            q0, q1 = max(0.0, -offset), min(mine[1], theirs[1] - offset)
            segment = {"query_start": q0, "query_end": q1, "ref_start": q0 + offset, "ref_end": q1 + offset}
            segment["score"] = agreement
            matches.append(
                {"ref_id": ref_id, "ref_path": ref_path, "score": agreement, "segments": [segment]}
            )
        matches.sort(key=lambda m: -m["score"])
        timings = {"total": time.perf_counter() - t0}
        records.append({"id": q.id, "path": q.path, "status": "ok", "matches": matches, "timings": timings})
    return {"records": records}
