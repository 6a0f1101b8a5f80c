"""Configuration of the binary-code task (a hashing head on `vq-embed` vectors).

The shipped `vq-hash` was trained with (its card has the exact command and metrics)::

    vq train hash --data ../shared/data/images/bsd100 --data ../shared/data/images/set14 \\
        --data ../shared/data/images/set5 --data ../shared/data/videos \\
        --data ../shared/data/images/photos --out runs/hash

``vq train hash --smoke --data DIR --out DIR`` is the seconds-long variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vq.train.config import TrainConfig


@dataclass
class HashConfig(TrainConfig):
    data: list[str] = field(
        default_factory=list, metadata={"help": "Image folders, videos or folders of videos (repeatable)."}
    )
    holdout: float = field(
        default=0.2, metadata={"help": "Share of sources kept out for evaluation (by a hash of the name)."}
    )
    embedder: str = field(default="vq-embed", metadata={"help": "Embedding model whose vectors are coded."})
    bits: int = field(default=256, metadata={"help": "Code length (256 bits = 32 bytes, PQ32's size)."})
    pairs: int = field(
        default=16384, metadata={"help": "Edited-view pairs embedded once (cached under --cache)."}
    )
    cache: str = field(default="runs/hash-pairs", metadata={"help": "Folder for the embedded pairs."})
    temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature on code agreement."})
    ranking_weight: float = field(default=0.1, metadata={"help": "Weight of the pairwise ranking loss."})
    neighbour_weight: float = field(
        default=1.0, metadata={"help": "Weight of keeping the vectors' cosine order among codes."}
    )
    quant_weight: float = field(default=0.1, metadata={"help": "Weight of pushing codes to +-1."})
    balance_weight: float = field(default=0.1, metadata={"help": "Weight of half the codes on each side."})


def get_config(smoke: bool = False) -> HashConfig:
    config = HashConfig(
        steps=1500,  # a linear head on cached vectors: minutes on 2 CPU cores
        batch_size=256,
        learning_rate=1e-3,
        warmup_steps=50,
        weight_decay=0.0,
        log_every=50,
        eval_every=500,
        checkpoint_every=500,
    )
    if smoke:
        config.steps, config.batch_size, config.pairs, config.bits = 3, 8, 24, 32
        config.log_every, config.checkpoint_every, config.warmup_steps, config.eval_every = 1, 3, 1, 0
    return config
