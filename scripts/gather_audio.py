"""Gather the recordings vq's audio fingerprints are measured (and later trained) on.

    python scripts/gather_audio.py --out runs/audio

Every step is a plain download or a deterministic synthesis, so two runs give the same
folder:

1. **Music**: Debian's `asc-music` (Advanced Strategic Command soundtrack) and
   `hyperrogue-music` (HyperRogue soundtrack), fetched with `apt-get download` (no root
   needed) and unpacked with `dpkg-deb -x`; every Ogg/MP3 of at least 20 s is kept (the
   games' short sound effects are not). Licences: GPL-2+ (both packages' `copyright`
   files, recorded in the manifest). `--packages` picks others among `LICENCES`.
2. **Speech**: fixed English and German sentences spoken by `espeak-ng` at several voices
   and speeds (Debian `espeak-ng`, GPL-3+; the synthesised audio carries no licence of
   its own). Skipped with a note where espeak-ng is missing.
3. **Soundtracks of the sample videos** in ``../shared/data/videos`` that have sound
   (`big_buck_bunny_0_30.webm`: CC-BY 3.0; `chaplin.mp4`: public domain), as WAV.
4. `manifest.json`: every file, its kind, where it came from and its licence.

`vq eval audio --sources runs/audio` reads the folder; `vq train audiofp` trains on it.

Music nobody trained on, for the audio suite of `vq eval dedup` (its references should
carry sound `vq-audiofp` never heard; the suite puts those first):

    python scripts/gather_audio.py --out runs/audio-unheard --music-only \
        --packages extremetuxracer-data,frozen-bubble-data,lincity-ng-data
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VIDEOS = REPO.parent / "shared" / "data" / "videos"
# Debian packages whose music may be gathered, with the licence their `copyright` file gives
# the music (checked by hand when added).
LICENCES = {
    "asc-music": "GPL-2+",
    "hyperrogue-music": "GPL-2+",
    "extremetuxracer-data": "GPL-2+",
    "frozen-bubble-data": "GPL-2",
    "lincity-ng-data": "GPL-2+",
}
DEFAULT_PACKAGES = ("asc-music", "hyperrogue-music")
MIN_SECONDS = 20.0
SENTENCES = [
    "The quick brown fox jumps over the lazy dog while the river keeps running to the sea.",
    "Please remember to bring the blue folder, two pencils and the map of the old town.",
    "Every morning the baker opens his shop at six and the street smells of fresh bread.",
    "The committee will meet again on Thursday to discuss the budget for the new library.",
    "Der Zug nach Hamburg fährt heute wegen Bauarbeiten zwanzig Minuten später ab.",
    "Im Herbst fallen die Blätter, und die Kinder sammeln Kastanien im Park hinter der Schule.",
]
VOICES = [("en", 150), ("en+f3", 170), ("en-us+m4", 130), ("de", 150), ("de+f2", 165)]


def entry(out: Path, dest: Path, kind: str, origin: str, licence: str) -> dict:
    """One file's line in the manifest."""
    return {"file": str(dest.relative_to(out)), "kind": kind, "from": origin, "licence": licence}


def audio_seconds(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        return float(container.duration or 0) / 1_000_000  # AV_TIME_BASE


def fetch_music(out: Path, notes: list[str], packages: tuple[str, ...] = DEFAULT_PACKAGES) -> list[dict]:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        notes.append("music skipped: needs Debian's apt-get and dpkg-deb")
        return []
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in packages:
            licence = LICENCES[package]
            subprocess.run(["apt-get", "download", "-q", package], check=True, cwd=tmp, capture_output=True)
            deb = next(Path(tmp).glob(f"{package}_*.deb"))
            root = Path(tmp) / package
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            for f in sorted(root.rglob("*")):
                if f.suffix.lower() not in (".ogg", ".mp3") or not f.is_file():
                    continue
                try:
                    seconds = audio_seconds(f)
                except Exception as e:  # a file that cannot be read is noted, not fatal
                    notes.append(f"{package}/{f.name}: {e}")
                    continue
                if seconds < MIN_SECONDS:
                    continue
                dest = out / "music" / f"{package}-{f.name.replace(' ', '_')}"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, dest)
                files.append(entry(out, dest, "music", f"debian:{package}", licence))
    return files


def synthesise_speech(out: Path, notes: list[str]) -> list[dict]:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        notes.append("speech skipped: needs espeak-ng (Debian: apt install espeak-ng)")
        return []
    files = []
    (out / "speech").mkdir(parents=True, exist_ok=True)
    for k, (voice, speed) in enumerate(VOICES):
        text = " ".join(SENTENCES[(k + i) % len(SENTENCES)] for i in range(4))
        dest = out / "speech" / f"espeak-{k}-{voice.replace('+', '_')}.wav"
        subprocess.run([espeak, "-v", voice, "-s", str(speed), "-w", str(dest), text], check=True)
        files.append(entry(out, dest, "speech", f"espeak-ng {voice}", "synthesised"))
    return files


def video_tracks(out: Path, notes: list[str]) -> list[dict]:
    from vq.errors import MediaError
    from vq.media.audio import decode_audio
    from vq.media.encode import write_audio

    licences = {"big_buck_bunny_0_30.webm": "CC-BY 3.0", "chaplin.mp4": "public domain"}
    files = []
    for name, licence in licences.items():
        try:
            x = decode_audio(VIDEOS / name, 16000)
        except MediaError as e:
            notes.append(f"{name}: {e}")
            continue
        dest = out / "video" / f"{Path(name).stem}.wav"
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_audio(dest, x, 16000)
        files.append(entry(out, dest, "soundtrack", f"shared/data/videos/{name}", licence))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/audio"))
    parser.add_argument(
        "--packages",
        default=",".join(DEFAULT_PACKAGES),
        help=f"Comma list of Debian packages to take music from, among {', '.join(LICENCES)}.",
    )
    parser.add_argument("--music-only", action="store_true", help="No speech, no sample soundtracks.")
    args = parser.parse_args()
    packages = tuple(p.strip() for p in args.packages.split(",") if p.strip())
    unknown = [p for p in packages if p not in LICENCES]
    if unknown:
        parser.error(f"no licence on record for {', '.join(unknown)}: choose among {', '.join(LICENCES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    files = fetch_music(args.out, notes, packages)
    if not args.music_only:
        files += synthesise_speech(args.out, notes) + video_tracks(args.out, notes)
    manifest = {"files": files, "notes": notes}
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for n in notes:
        print(n, file=sys.stderr)
    print(f"{len(files)} recordings in {args.out}")


if __name__ == "__main__":
    main()
