"""Media I/O: probe and decode video (PyAV on CPU, NVDEC through PyAV's CUDA hwaccel),
sample frames by time, decode audio, encode video, and the edits library.

>>> from vq.media import open_video
>>> with open_video("clip.mp4") as video:            # doctest: +SKIP
...     frames = video.sample(fps=1.0, max_side=640)
...     frames.images.shape, frames.times[:3]
((60, 360, 640, 3), array([0., 1., 2.]))
"""

from vq.media.video import VIDEO_SUFFIXES, Frames, Video, VideoInfo, open_video, probe

__all__ = ["VIDEO_SUFFIXES", "Frames", "Video", "VideoInfo", "open_video", "probe"]
