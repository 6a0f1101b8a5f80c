"""Media benchmark: sampling, content box, resize and audio features, each beside its baseline.

    python benchmarks/media.py --json benchmarks/results/media.json

1. 1-fps sampling of two 60 s 720p H.264 clips made from Big Buck Bunny (default x264
   settings, and a fixed 1 s GOP as in live-stream recordings): vq's plan against the
   naive decode (every frame, each converted to full-resolution RGB, nearest frame kept),
   and what skipping the loop filter costs in picture (PSNR against exact decoding).
2. Content box on generated edit cases (IoU >= 0.9 share, per family and per seed) and
   ms/frame at 720p.
3. Antialiased resize against Pillow: agreement and time, 720p frame to 224x224.
4. Log-fbank / MFCC (+ deltas, standardisation) on 5 minutes of a real soundtrack against
   python_speech_features: equality and time.

Clips are generated once into benchmarks/.cache (about a minute of encoding).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from vq.bench import machine_info
from vq.cli.output import print_table
from vq.eval.metrics.image import psnr_y
from vq.fsutil import atomic_write_text
from vq.media import open_video
from vq.media.encode import write_video

REPO = Path(__file__).resolve().parent.parent
VIDEOS = REPO.parent / "shared" / "data" / "videos"
CACHE = REPO / "benchmarks" / ".cache"


def best_of(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def make_clips() -> dict[str, Path]:
    """60 s of 720p: Big Buck Bunny's 30 s forward then backward, in two GOP structures."""
    CACHE.mkdir(parents=True, exist_ok=True)
    clips = {"default_gop": CACHE / "bbb60_default.mp4", "gop_1s": CACHE / "bbb60_gop1s.mp4"}
    if all(p.is_file() for p in clips.values()):
        return clips
    with open_video(VIDEOS / "big_buck_bunny_0_30.webm") as video:
        frames = video.sample(times=np.arange(0, 30, 1 / 24), fast=False).images
    sequence = np.concatenate([frames, frames[::-1]])
    write_video(clips["default_gop"], sequence, 24, codec="h264")
    write_video(clips["gop_1s"], sequence, 24, codec="h264", gop=24, scenecut=False)
    return clips


def naive_one_fps(path: Path) -> int:
    """Decode every frame, convert each to full-resolution RGB, keep the nearest per second.
    Streaming (only the current best frame per second is held): holding all 1440 frames
    (4 GB) made the baseline's time depend on the machine's memory state (2.7-5.5 s)."""
    import av

    best: dict[int, tuple[float, np.ndarray]] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            second = round(frame.time)
            if second not in best or abs(frame.time - second) < best[second][0]:
                best[second] = (abs(frame.time - second), rgb)
    return len(best)


def bench_sampling(repeat: int) -> list[dict]:
    rows = []
    for name, path in make_clips().items():
        with open_video(path) as v:
            duration, gop = v.info.duration, v.info.keyframe_interval
        naive_s, _ = best_of(lambda p=path: naive_one_fps(p), repeat)
        variants = {
            "vq fast, full size": dict(fast=True),
            "vq fast, 640 px": dict(fast=True, max_side=640),
            "vq exact (loop filter on)": dict(fast=False),
        }
        rows.append(
            {
                "clip": name,
                "keyframe_interval_s": gop,
                "variant": "naive: decode all + RGB",
                "seconds": naive_s,
                "x_realtime": duration / naive_s,
                "speedup": 1.0,
            }
        )
        results = {}
        for label, kwargs in variants.items():

            def run(p=path, kw=kwargs):
                with open_video(p) as video:
                    return video.sample(fps=1.0, **kw)

            secs, frames = best_of(run, repeat)
            results[label] = frames
            rows.append(
                {
                    "clip": name,
                    "keyframe_interval_s": gop,
                    "variant": label,
                    "seconds": secs,
                    "x_realtime": duration / secs,
                    "speedup": naive_s / secs,
                    "strategy": frames.stats["strategy"],
                    "decoded": frames.stats["decoded"],
                }
            )
        # What skipping the loop filter costs: the same frames (by time), decoded both ways.
        times = results["vq fast, full size"].times
        with open_video(path) as video:
            skipped = video.sample(times=times, fast=True)
        with open_video(path) as video:
            exact = video.sample(times=times, fast=False)
        psnr = [psnr_y(a, b) for a, b in zip(skipped.images, exact.images, strict=True)]
        finite = [p for p in psnr if np.isfinite(p)]
        rows[-3]["psnr_vs_exact_db"] = float(np.mean(finite)) if finite else float("inf")
    return rows


def bench_content_box(seeds: list[int]) -> dict:
    """Each seed draws 160 new cases (20 per family) from the same six clips. Seeds 0 and 1
    were looked at while the detector was tuned; 2-4 are the held-out check."""
    from vq.eval.content_box import evaluate, make_cases, summarize
    from vq.preprocess.content_box import detect_content_box

    names = [
        "chaplin.mp4",
        "big_buck_bunny_0_30.webm",
        "example2.mp4",
        "example3.mp4",
        "fire2.mp4",
        "video_with_failing_audio.mp4",
    ]
    rows = []
    per_seed = {}
    for seed in seeds:
        result = evaluate(make_cases([VIDEOS / n for n in names], per_family=20, seed=seed))
        rows += result["rows"]
        per_seed[seed] = {"cases": result["cases"], "iou_ge_0.9": result["iou_ge_0.9"]}
    report = {**summarize(rows), "per_seed": per_seed}
    with open_video(make_clips()["default_gop"]) as v:
        frames = v.sample(count=16, within=60.0).images  # 16 frames of 1280x720
    secs, _ = best_of(lambda: detect_content_box(frames), 5)
    report["ms_per_frame_720p"] = 1000 * secs / len(frames)
    return report


def bench_loop_filter_embedding() -> dict:
    """What skipping the loop filter costs the copy-detection embedding: the same 1-fps
    samples decoded fast and exactly, embedded with the shipped model, cosine per frame."""
    from vq.stages.embed import DECODE_MAX_SIDE, Embedder

    embedder = Embedder(None, backend="ort")
    out = {}
    for name, clip in make_clips().items():
        with open_video(clip) as v:
            fast = v.sample(fps=1.0, max_side=DECODE_MAX_SIDE, fast=True)
        with open_video(clip) as v:
            exact = v.sample(times=fast.times, max_side=DECODE_MAX_SIDE, fast=False)
        cos = np.sum(embedder.embed_frames(fast.images) * embedder.embed_frames(exact.images), axis=1)
        out[name] = {"frames": len(cos), "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}
    return out


def bench_resize(repeat: int) -> dict:
    from PIL import Image

    from vq.preprocess.resize import resize

    with open_video(make_clips()["default_gop"]) as v:
        frame = v.sample(times=[10.0]).images[0]
    out = {}
    for method, pil in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
        ours_s, ours = best_of(lambda m=method: resize(frame, (224, 224), m, engine="numpy"), repeat)
        pil_s, ref = best_of(lambda p=pil: np.asarray(Image.fromarray(frame).resize((224, 224), p)), repeat)
        diff = np.abs(ours.astype(int) - ref.astype(int))
        out[method] = {"max_diff": int(diff.max()), "ms_vq_numpy": ours_s * 1000, "ms_pillow": pil_s * 1000}
    return out


def five_minutes_of_audio() -> np.ndarray:
    """A real soundtrack (quiet passages included) looped to 5 minutes, 16-bit scale."""
    from vq.media.audio import decode_audio

    sound = decode_audio(VIDEOS / "chaplin.mp4").astype(np.float64) * 32767
    return np.resize(sound, 16000 * 300)


def bench_audio(repeat: int) -> list[dict]:
    import python_speech_features as psf

    from vq.audio import FeatureConfig, features

    signal = five_minutes_of_audio()
    rows = []
    for kind, cfg, ref_base in (
        ("logfbank", FeatureConfig(nfilt=40), lambda: psf.logfbank(signal, 16000, nfilt=40)),
        ("mfcc", FeatureConfig(), lambda: psf.mfcc(signal, 16000)),
    ):

        def reference(base=ref_base):
            b = base()
            d1 = psf.delta(b, 2)
            out = np.concatenate([b, d1, psf.delta(d1, 2)], axis=1)
            return (out - out.mean(0)) / (out.std(0) + 1e-8)

        # Warm, best of `repeat` back-to-back runs each (timeit's convention). Runs
        # interleaved with the baseline are slower for vq: its second core idles during the
        # single-threaded baseline and wakes up slowly on this VM (BENCHMARKS.md has both).
        # At least 7 runs each after a warm-up: 50 ms runs on a shared 2-core VM vary by
        # +-20 % (thread wake-ups, a neighbour's load); 3 were not enough to see the floor.
        runs = max(repeat, 7)
        features(signal, kind, cfg)
        ours_s, ours = best_of(lambda k=kind, c=cfg: features(signal, k, c), runs)
        ref_s, ref = best_of(reference, runs)
        rows.append(
            {
                "features": f"{kind} + deltas + standardise",
                "max_abs_diff": float(np.abs(ours - ref).max()),
                "ms_vq": ours_s * 1000,
                "ms_python_speech_features": ref_s * 1000,
                "speedup": ref_s / ours_s,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--box-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()

    sampling = bench_sampling(args.repeat)
    print_table(
        sampling,
        [
            ("clip", "clip"),
            ("keyframe_interval_s", "GOP s"),
            ("variant", "variant"),
            ("seconds", "s"),
            ("x_realtime", "x real time"),
            ("speedup", "x naive"),
            ("strategy", "plan"),
            ("decoded", "decoded"),
            ("psnr_vs_exact_db", "PSNR vs exact"),
        ],
        title="1-fps sampling, 60 s 720p H.264",
    )
    box = bench_content_box(args.box_seeds)
    print_table(
        [{"family": k, **v} for k, v in box["per_family"].items()]
        + [
            {
                "family": "ALL",
                "cases": box["cases"],
                "iou_ge_0.9": box["iou_ge_0.9"],
                "mean_iou": box["mean_iou"],
            }
        ],
        [("family", "family"), ("cases", "cases"), ("iou_ge_0.9", "IoU>=0.9"), ("mean_iou", "mean IoU")],
        title=f"content box ({box['ms_per_frame_720p']:.1f} ms/frame at 720p; "
        + ", ".join(f"seed {k}: {v['iou_ge_0.9']:.3f}" for k, v in box["per_seed"].items())
        + ")",
    )
    loop_filter = bench_loop_filter_embedding()
    print_table(
        [{"clip": k, **v} for k, v in loop_filter.items()],
        [("clip", "clip"), ("frames", "frames"), ("mean_cosine", "mean cos"), ("min_cosine", "min cos")],
        title="vq-embed: fast (no loop filter) vs exact decoding of the same frames",
    )
    resize = bench_resize(args.repeat * 3)
    print_table(
        [{"method": k, **v} for k, v in resize.items()],
        [
            ("method", "method"),
            ("max_diff", "max |numpy - Pillow|"),
            ("ms_vq_numpy", "numpy ms"),
            ("ms_pillow", "Pillow ms"),
        ],
        title="resize 1280x720 -> 224x224",
    )
    audio = bench_audio(args.repeat)
    print_table(
        audio,
        [
            ("features", "features"),
            ("max_abs_diff", "max |diff|"),
            ("ms_vq", "vq ms"),
            ("ms_python_speech_features", "psf ms"),
            ("speedup", "x psf"),
        ],
        title="audio features, 5 min at 16 kHz",
    )
    if args.json:
        atomic_write_text(
            args.json,
            json.dumps(
                {
                    "machine": machine_info(),
                    "sampling": sampling,
                    "content_box": box,
                    "loop_filter_embedding": loop_filter,
                    "resize": resize,
                    "audio": audio,
                },
                indent=2,
                default=float,
            )
            + "\n",
        )


if __name__ == "__main__":
    main()
