"""vq: a portable video-intelligence toolkit.

Copy detection, no-reference quality scoring and one-step enhancement, with models
trained in JAX/Flax, exported to ONNX and served by ONNX Runtime or TensorRT. Importing
`vq` is cheap and never imports JAX: training and export live in the `vq.train` and
`vq.export` sub-packages, installed with the `train` extra.
"""

__version__ = "0.1.0"
