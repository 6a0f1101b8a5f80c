"""Learned binary codes: `vq train hash` (smoke), export, the `Hasher` stage, and a
library with `codes = "binary"` (IndexBinaryIVF + exact re-ranking) finding copies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vq.cli.app import main
from vq.index.library import Library, LibraryConfig

from conftest import needs_train


@pytest.fixture(scope="module")
def hash_artifact(shared_data, tmp_path_factory):
    if not __import__("conftest").HAS_TRAIN:
        pytest.skip("needs the 'train' extra")
    work = tmp_path_factory.mktemp("hash")
    data = shared_data / "images"
    args = ["train", "hash", "--smoke", "--data", str(data / "set5"), "--data", str(data / "set14")]
    assert main([*args, "--out", str(work / "run"), "--set", f"cache={work / 'pairs'}"]) == 0
    assert main(["export", "onnx", str(work / "run"), "--out", str(work / "art")]) == 0
    return work


def binary_config(hash_artifact, **kw) -> LibraryConfig:
    """A 256-d library config with binary codes from the smoke-trained hashing model."""
    return LibraryConfig(
        model="m", model_sha256="x", dim=256, codes="binary", hash_model=str(hash_artifact / "art"), **kw
    )


@needs_train
def test_smoke_training_reports_learned_and_simhash_retrieval(hash_artifact):
    lines = (hash_artifact / "run" / "metrics.jsonl").read_text().splitlines()
    metrics = [json.loads(line) for line in lines if "eval/holdout_recall10_rerank" in line][-1]
    for name in ("holdout_recall10_rerank", "simhash_recall10_rerank", "holdout_source10_codes"):
        assert 0.0 <= metrics[f"eval/{name}"] <= 1.0


@needs_train
def test_hasher_packs_the_signs(hash_artifact):
    from vq.stages.hash import Hasher

    hasher = Hasher(str(hash_artifact / "art"))
    x = np.random.default_rng(0).standard_normal((5, hasher.dim)).astype(np.float32)
    codes = hasher.codes(x)
    assert codes.shape == (5, hasher.bits // 8) and codes.dtype == np.uint8
    scores = hasher.run({"vectors": x})["codes"]
    np.testing.assert_array_equal(np.unpackbits(codes, axis=1).astype(bool), scores > 0)


@needs_train
def test_a_binary_code_library_finds_near_duplicates_and_reopens(hash_artifact, tmp_path):
    rng = np.random.default_rng(0)
    config = binary_config(hash_artifact, flat_limit=1000)
    stored = []
    with Library.create(tmp_path / "lib", config) as lib:
        for v in range(30):
            x = rng.standard_normal(256) + 0.8 * rng.standard_normal((100, 256))
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            stored.append(x)
            lib.add_video(f"v{v}", x, np.arange(100.0))
        assert lib.stats()["index"].startswith("BIVF")
    stored = np.concatenate(stored)
    picks = np.arange(0, len(stored), 37)
    q = stored[picks] + 0.02 * rng.standard_normal((len(picks), 256))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    import faiss

    real_factory = faiss.index_binary_factory
    faiss.index_binary_factory = None  # reopening must load the index file, not rebuild it
    try:
        with Library.open(tmp_path / "lib") as lib:
            assert lib._index.ntotal == len(stored)
            _, ids = lib.search(q, 10)
    finally:
        faiss.index_binary_factory = real_factory
    assert np.mean(ids[:, 0] == picks) >= 0.95


def test_binary_codes_need_a_hash_model(tmp_path, capsys):
    code = main(
        [
            "index",
            "create",
            str(tmp_path / "lib"),
            "--codes",
            "binary",
            "--hash-model",
            str(tmp_path / "none"),
        ]
    )
    assert code != 0
    assert capsys.readouterr().err.count("\n") == 1


@needs_train
def test_a_binary_library_refuses_codes_from_another_hash_model(hash_artifact, tmp_path):
    from vq.index.library import LibraryError

    # as if the library had been built by another hashing model
    config = binary_config(hash_artifact, flat_limit=100, hash_model_sha256="0" * 64)
    with (
        Library.create(tmp_path / "lib", config) as lib,
        pytest.raises(LibraryError, match="binary codes were made by"),
    ):
        lib.add_video("v", np.eye(256, dtype=np.float32)[:200], np.arange(200.0))
