"""vq.preprocess.resize against Pillow, and normalisation per model card."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vq.preprocess.normalize import equalise_luma, to_model_input
from vq.preprocess.resize import pass_order, resize, resize_weights

PIL_FILTER = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


@pytest.fixture(scope="module")
def images(shared_data):
    names = ["bsd100/img_005.png", "bsd100/img_001.png", "set14/img_003.png", "set5/img_001.png"]
    return [np.asarray(Image.open(shared_data / "images" / n).convert("RGB")) for n in names]


def random_sizes(image, n, rng):
    h, w = image.shape[:2]
    return [(int(rng.integers(4, 2 * w)), int(rng.integers(4, 2 * h))) for _ in range(n)]


def pillow(image, size, method):
    return np.asarray(Image.fromarray(image).resize(size, PIL_FILTER[method])).astype(int)


def test_bilinear_matches_pillow_within_one_level(images):
    rng = np.random.default_rng(0)
    for image in images:
        for size in [*random_sizes(image, 25, rng), (160, 160), (224, 224), (256, 256)]:
            diff = np.abs(
                resize(image, size, "bilinear", engine="numpy").astype(int) - pillow(image, size, "bilinear")
            )
            assert diff.max() <= 1, (image.shape, size)


def test_bicubic_arithmetic_matches_pillow_pass_for_pass(images):
    """Pillow run one axis at a time, in our pass order, is our result within one level:
    the weights, windows, rounding and clipping are Pillow's."""
    rng = np.random.default_rng(1)
    for image in images:
        h, w = image.shape[:2]
        for size in random_sizes(image, 15, rng):
            first = (size[0], h) if pass_order(w, h, *size) == ("x", "y") else (w, size[1])
            two_pass = np.asarray(
                Image.fromarray(image).resize(first, Image.BICUBIC).resize(size, Image.BICUBIC)
            ).astype(int)
            assert np.abs(resize(image, size, "bicubic", engine="numpy").astype(int) - two_pass).max() <= 1


def test_bicubic_agrees_with_pillow_on_most_sizes(images):
    """Pillow 13 chooses its pass order by an internal cost estimate that `pass_order`
    approximates; where it guesses wrong, clipped overshoot can differ by a few levels."""
    rng = np.random.default_rng(2)
    results = [
        np.abs(
            resize(image, size, "bicubic", engine="numpy").astype(int) - pillow(image, size, "bicubic")
        ).max()
        <= 1
        for image in images
        for size in random_sizes(image, 40, rng)
    ]
    assert np.mean(results) >= 0.9


def test_batches_and_weights():
    frames = np.random.default_rng(0).integers(0, 255, (3, 40, 60, 3), dtype=np.uint8)
    batch = resize(frames, (20, 10), engine="numpy")
    assert batch.shape == (3, 10, 20, 3)
    np.testing.assert_array_equal(batch[1], resize(frames[1], (20, 10), engine="numpy"))
    np.testing.assert_array_equal(resize(frames, (20, 10)), batch)  # Pillow engine, same pixels
    w = resize_weights(60, 20, "bicubic") / 2**22  # fixed point, as Pillow
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)  # each output is a weighted mean
    flat = np.full((10, 10, 3), 77, np.uint8)
    assert np.all(resize(flat, (37, 3), "bicubic", engine="numpy") == 77)
    with pytest.raises(ValueError):
        resize(frames.astype(np.float32), (10, 10))
    with pytest.raises(ValueError):
        resize(frames, (10, 10), engine="torch")
    with pytest.raises(ValueError):
        resize_weights(10, 0, "bilinear")


def test_normalisation_follows_the_card():
    frames = np.array([[[[0, 128, 255]]]], np.uint8)
    prep = {"scale": 1 / 255, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 1.0]}
    out = to_model_input(frames, prep)
    np.testing.assert_allclose(out[0, 0, 0], [(0 - 0.5) / 0.25, (128 / 255 - 0.5) / 0.5, 0.5], atol=1e-6)
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    ("mean", "std"),
    [
        ([0.45, 0.45, 0.45], [0.25, 0.25, 0.25]),
        ([0.45, 0.406, 0.485], [0.25, 0.25, 0.25]),
        ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ],
)
def test_normalisation_table_equals_the_affine_map(mean, std):
    """The lookup table (one for all channels, or one per channel) gives exactly the
    float32 values of converting, scaling and shifting every pixel."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 3, 17, 19, 3), dtype=np.uint8)
    frames[0, 0, 0, :, :] = np.arange(19)[:, None] + 237  # the top of the range too
    frames[0, 0, 1, :, :] = np.arange(19)[:, None]  # and the bottom
    prep = {"scale": 1 / 255, "mean": mean, "std": std}  # one table for all channels, or one each
    gain = (np.float32(1 / 255) / np.asarray(std, np.float32)).astype(np.float32)
    offset = (-np.asarray(prep["mean"], np.float32) / np.asarray(std, np.float32)).astype(np.float32)
    expected = frames.astype(np.float32) * gain + offset
    out = to_model_input(frames, prep)
    assert out.dtype == np.float32 and out.shape == frames.shape
    np.testing.assert_array_equal(out, expected)


def test_equalised_luma_is_blind_to_colour_grades(images):
    """A grade (grey, a tone curve, a film look) keeps what is brighter than what: the
    equalised luma of a graded picture is the original's, to a few levels; another
    picture's is far from it."""
    from vq.synth.pixel import ColorGrade

    image = np.ascontiguousarray(images[0][:128, :128])
    plain = equalise_luma(image[None])[0].astype(int)
    assert plain.shape == image.shape and (plain[..., 0] == plain[..., 2]).all()
    assert plain.min() == 0 and plain.max() == 255  # stretched over the whole range
    grey = np.repeat(
        np.rint(image.astype(np.float32) @ [0.299, 0.587, 0.114]).astype(np.uint8)[..., None], 3, -1
    )
    grades = [
        grey,
        ColorGrade(gamma=0.6, contrast=0.6)(image, 0.0),
        ColorGrade(hue=40.0, saturation=0.3, highlights=(0.1, 0.05, 0.0), fade=0.1)(image, 0.0),
    ]
    other = np.ascontiguousarray(images[1][:128, :128])
    far = np.abs(equalise_luma(other[None])[0].astype(int) - plain).mean()
    for graded in grades:
        near = np.abs(equalise_luma(graded[None])[0].astype(int) - plain).mean()
        raw = np.abs(graded.astype(int) - image.astype(int)).mean()
        assert near < 0.35 * raw and near < 0.2 * far, (near, raw, far)
    # A flat picture has nothing to equalise; a batch is equalised picture by picture.
    assert (equalise_luma(np.full((2, 8, 8, 3), 77, np.uint8)) == 0).all()
    both = equalise_luma(np.stack([image, other]))
    np.testing.assert_array_equal(both[0], plain)


def test_a_card_asking_for_equalised_luma_gets_it():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    prep = {"scale": 1 / 255, "mean": [0.0] * 3, "std": [1.0] * 3}
    out = to_model_input(frames, {**prep, "color": "equalised-luma"})
    np.testing.assert_allclose(out, equalise_luma(frames) / 255.0, atol=1e-6)
    assert not np.allclose(to_model_input(frames, {**prep, "color": "RGB"}), out)
