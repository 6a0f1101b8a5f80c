"""What the CPU offers, for picking int8 graphs and labelling measurements.

int8 matrix products on x86 differ by instruction set: CPUs with VNNI (AVX512-VNNI,
AVX-VNNI, AMX) multiply-accumulate 8-bit pairs straight into 32 bits, while AVX2 and
AVX-512 without VNNI go through ``vpmaddubsw``, which sums two u8 x s8 products into a
*saturating* int16. ONNX Runtime's CPU kernels pick the path from CPUID at load time, so
the same graph can give different numbers on two machines (see `vq.export.quantize`).
"""

from __future__ import annotations

import platform
from functools import cache

VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags the kernel reports (Linux); empty where unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def int8_isa() -> str:
    """The int8 dot-product path this CPU takes: "vnni", "avx512", "avx2", or "unknown"."""
    flags = cpu_flags()
    if flags & VNNI_FLAGS:
        return "vnni"
    if "avx512bw" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "unknown"
