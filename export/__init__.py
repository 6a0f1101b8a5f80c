"""Flax -> ONNX export, parity checks, fp16/int8 graphs and TensorRT engines (needs `vq[train]`).

The steps, each a plain function over paths so they compose and test alone:

1. `onnx_export.export_onnx`: Flax NNX module -> ONNX with jax2onnx, symbolic dims kept;
2. `parity.check_parity`: ONNX Runtime vs JAX on fresh random inputs (fp32 <= 1e-4);
3. `quantize.to_fp16` / `quantize.quantize_int8`: reduced precision carried by the graph
   (casts; static Q/DQ calibrated on real inputs), so ORT and TensorRT run the same numerics;
4. `artifact.export_artifact`: all of the above into a model folder with its `card.json`;
5. `engine.build_engine_for`: a serialized TensorRT engine beside the artifact (GPU hosts).
"""
