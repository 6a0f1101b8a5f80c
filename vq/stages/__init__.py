"""Model stages: an artifact + a backend session + the pre/post-processing around it."""

from vq.registry import Registry

STAGES = Registry("stage")
STAGES.register(
    "enhance",
    "vq.stages.enhance:Enhancer",
    summary="one-pass super-resolution of frames (tiled, any backend)",
)
STAGES.register(
    "embed",
    "vq.stages.embed:Embedder",
    summary="copy-detection frame embeddings (content box, resize, any backend)",
)
