"""Audio features on the runtime path: log mel filterbank and MFCC, numpy only.

See `vq.audio.features`; decoding to mono 16 kHz PCM is `vq.media.audio.decode_audio`.
"""

from vq.audio.features import FeatureConfig, delta, fbank, features, logfbank, mfcc, standardize

__all__ = ["FeatureConfig", "delta", "fbank", "features", "logfbank", "mfcc", "standardize"]
