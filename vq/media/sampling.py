"""Which frames to decode for a set of sample times, and decoding only those.

The copy-detection seed samples 1 frame per second (720p) for the main system and 30
frames evenly over the first 5 minutes for the fallback system; in both, most decoded
frames are thrown away. The plan here avoids decoding them:

1. One demux pass (no decoding) lists keyframe times (`scan_packets`).
2. If keyframes are at least as dense as the samples (common in live-stream recordings,
   1-2 s GOPs), the decoder is told to skip every non-key frame (`NONKEY`) and each sample
   takes its nearest keyframe.
3. Otherwise it skips non-reference frames (B-frames nothing depends on; for H.264 and
   HEVC in MP4 they are dropped before the decoder, from their NAL headers) and takes the
   nearest reference frame. Where every frame counts (exact times, dense grids, the loop
   filter wanted) it still drops the non-reference frames that no target can pick. When
   the next sample lies beyond the next keyframe by more than `SEEK_MIN_GAP` seconds, it
   seeks instead of decoding the gap.
4. `fast` also skips the in-loop deblocking filter, and only the chosen frames are
   converted to RGB, scaled to the consumer's size inside that conversion.

Sample times are what was asked; `Frames.times` are the pts of the frames actually
returned (within half a sample interval of the request, or dropped past the end).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from vq.errors import DeadlineExceeded, MediaError
from vq.fsutil import is_url
from vq.media.frames import DecodableVideo, Frames

# Seek only when it saves decoding at least this many seconds of video.
SEEK_MIN_GAP = 0.5  # measured: 0.5 s saved 6 % of decodes on a default-GOP clip, shorter gaps cost
# Skip non-reference frames only when samples are at least this many frames apart.
NONREF_MIN_SPACING = 8


@dataclass(frozen=True)
class PacketIndex:
    key_times: np.ndarray  # keyframe pts in seconds, sorted
    key_pts: np.ndarray  # the same keyframes' pts in stream time base (int64): what a seek takes
    last_time: float | None  # pts of the last packet, seconds
    packets: int
    keyframe_interval: float | None  # the largest keyframe gap (to the end of the last frame)


def _open_again(video: DecodableVideo):
    """A second demuxer on the same source, so scans never disturb the decoding one."""
    import av

    return av.open(video.path)


def scan_packets(video: DecodableVideo) -> PacketIndex:
    """Demux the video stream once, without decoding: keyframe times and the last pts."""
    import av

    keys: list[int] = []  # pts, exact
    last, end, count = None, None, 0
    tb, start = video.time_base, video.start_pts
    try:
        container = _open_again(video)
    except av.error.FFmpegError:
        return PacketIndex(np.zeros(0), np.zeros(0, np.int64), None, 0, None)
    with container:
        stream = container.streams.video[0]
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                t = (packet.pts - start) * tb
                count += 1
                last = t if last is None else max(last, t)
                # Where the last frame ends: the gap after the last keyframe runs to there,
                # not to the last frame's start (a keyframe and one more frame are not an
                # all-keyframe stream, whose every gap is one frame).
                shown_until = t + (packet.duration or 0) * tb
                end = shown_until if end is None else max(end, shown_until)
                if packet.is_keyframe:
                    keys.append(int(packet.pts))
        except (av.error.FFmpegError, OSError):
            pass  # a truncated or damaged tail: index what came before it
    key_pts = np.unique(np.asarray(keys, dtype=np.int64))
    key_times = (key_pts - start) * tb
    interval = None
    if len(key_times) and end is not None:
        interval = float(np.max(np.diff(np.append(key_times, end)), initial=0.0))
    return PacketIndex(key_times, key_pts, last, count, interval)


def first_frame(video: DecodableVideo):
    """The first decodable frame (on a second demuxer), or None."""
    import av

    try:
        with _open_again(video) as container:
            for packet in container.demux(container.streams.video[0]):
                try:
                    for frame in packet.decode():
                        return frame
                except av.error.FFmpegError:
                    continue
    except (av.error.FFmpegError, OSError):
        return None
    return None


def sample_times(
    video: DecodableVideo,
    *,
    fps: float | None = None,
    times: Any = None,
    count: int | None = None,
    within: float | None = None,
) -> np.ndarray:
    """The requested sample times in seconds, sorted. Exactly one way of asking."""
    given = sum(x is not None for x in (fps, times, count))
    if given != 1:
        raise MediaError("sample with exactly one of fps=, times= or count= (with within=)")
    duration = video.info.duration
    if times is not None:
        out = np.unique(np.asarray(times, dtype=np.float64))
        if out.size and out[0] < 0:
            raise MediaError("sample times must be >= 0")
        return out
    if fps is not None:
        if not fps > 0:
            raise MediaError(f"fps must be > 0, got {fps}")
        if duration is None:
            raise MediaError(f"{video.path}: duration unknown; sample by times= instead")
        return np.arange(0.0, duration, 1.0 / fps)
    if count is None or count < 1:
        raise MediaError(f"count must be >= 1, got {count}")
    span = within if within is not None else duration
    if span is None:
        raise MediaError(f"{video.path}: duration unknown; pass within=")
    if duration is not None:
        span = min(span, duration)
    return (np.arange(count) + 0.5) * (span / count)  # the middle of each of `count` slots


def output_size(
    width: int, height: int, size: tuple[int, int] | None, max_side: int | None
) -> tuple[int, int]:
    """Display-space (w, h) the consumer wants; even numbers are not required."""
    if size is not None:
        return int(size[0]), int(size[1])
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    return width, height


def to_rgb(frame, out_wh: tuple[int, int], rotation: int) -> np.ndarray:
    """One frame -> uint8 RGB at display size `out_wh`, scaled inside the conversion."""
    w, h = out_wh
    cw, ch = (h, w) if rotation in (90, 270) else (w, h)
    shrink = cw < frame.width or ch < frame.height
    rgb = frame.to_ndarray(
        format="rgb24", width=cw, height=ch, interpolation="AREA" if shrink else "BILINEAR"
    )
    if rotation:
        rgb = np.rot90(rgb, k=rotation // 90)
    return np.ascontiguousarray(rgb)


def _nal_length_size(ctx) -> int | None:
    """Bytes of the NAL length prefix for MP4-style (avcC / hvcC) H.264 and HEVC streams."""
    ext = bytes(ctx.extradata or b"")
    if ctx.name == "h264" and len(ext) > 4 and ext[0] == 1:
        return (ext[4] & 3) + 1
    # An HEVC `_N` picture is unreferenced only within its temporal sub-layer: dropping it
    # is safe only where the stream has one (hvcC numTemporalLayers; 0 means unknown).
    if ctx.name == "hevc" and len(ext) > 21 and ext[0] == 1 and (ext[21] >> 3 & 7) == 1:
        return (ext[21] & 3) + 1
    return None


# HEVC sub-layer non-reference picture NAL types (TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, RSV_VCL_N*).
_HEVC_NONREF = {0, 2, 4, 6, 8, 10, 12, 14}


def is_nonreference(data: bytes, nal_len: int, codec: str) -> bool:
    """True when every picture slice in a length-prefixed packet is a non-reference one,
    so no other frame is predicted from it and it can skip the decoder entirely."""
    i, n, slices = 0, len(data), 0
    while i + nal_len < n:
        size = int.from_bytes(data[i : i + nal_len], "big")
        header = data[i + nal_len]
        if codec == "h264":
            if header & 0x1F in (1, 5):  # coded slice (non-IDR, IDR)
                slices += 1
                if header >> 5 & 3:  # nal_ref_idc != 0: something refers to it
                    return False
        else:
            kind = header >> 1 & 0x3F
            if kind < 32:  # VCL (picture) NAL unit
                slices += 1
                if kind not in _HEVC_NONREF:
                    return False
        i += nal_len + size
    return slices > 0


class _Decoder:
    """Frames of one stream in presentation order, restartable at a seek point."""

    def __init__(self, video: DecodableVideo, skip: str, fast: bool, needed: Any = None):
        # Packets the plan does not need never reach the decoder: asking the decoder to
        # discard them (skip_frame) still pays a threaded decode call per packet. In
        # keyframe mode that was 0.49 s of 0.62 s on a 60 s 720p clip with a 1 s GOP; for
        # non-reference H.264 frames, 25 % of the decode time of a default x264 clip.
        # `needed(pts) -> bool` (stream time base): where every frame must be decoded, a
        # non-reference one that no target can pick is still dropped (the gaps between
        # the quality model's windows of consecutive frames, say).
        self.keyframes_only = skip == "NONKEY"
        self.all_nonref = skip == "NONREF"
        self.needed = needed if skip == "DEFAULT" else None
        ctx = video.stream.codec_context
        self.nal_len = _nal_length_size(ctx) if self.all_nonref or self.needed else None
        self.codec = ctx.name
        ctx.thread_type = "AUTO"  # frame + slice threads
        ctx.skip_frame = skip
        if fast:
            ctx.options = {**dict(ctx.options or {}), "skip_loop_filter": "all"}
        self.video = video
        self.decoded = 0
        self.corrupt = 0
        self.seeks = 0
        self.last_pts = -(1 << 62)
        self._frames = self._run()

    def _run(self):
        import av

        container, stream = self.video.container, self.video.stream
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, OSError):
                self.corrupt += 1  # damaged container data: the demuxer gives up here
                return
            if packet.size and not packet.is_keyframe:  # (size 0 is the end-of-stream flush)
                if self.keyframes_only:
                    continue
                if (
                    self.nal_len
                    and self._droppable(packet)
                    and is_nonreference(bytes(packet), self.nal_len, self.codec)
                ):
                    continue
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                self.corrupt += 1  # a corrupt packet: skip it, keep decoding
                continue
            for frame in frames:
                if frame.pts is None:
                    continue
                if frame.pts <= self.last_pts:
                    # Out of order: which frame comes "before" a target is no longer a
                    # matter of time alone, so stop dropping by time.
                    self.needed = None
                self.last_pts = frame.pts
                self.decoded += 1
                yield frame

    def _droppable(self, packet) -> bool:
        """Whether a non-reference packet may skip the decoder."""
        if self.all_nonref:
            return True
        return self.needed is not None and packet.pts is not None and not self.needed(packet.pts)

    def seek(self, pts: int) -> None:
        """Restart at the keyframe with this exact pts (stream time base). A time in seconds
        round-tripped through a float time base can come out one tick early, and a seek one
        tick before a keyframe lands on the one before it."""
        v = self.video
        v.container.seek(int(pts), stream=v.stream, backward=True)
        v.stream.codec_context.flush_buffers()
        self.seeks += 1
        self.last_pts = -(1 << 62)
        self._frames = self._run()

    def next(self):
        return next(self._frames, None)


@dataclass(frozen=True)
class Request:
    """One consumer's share of a decode: its sample times, how near a frame must be, and
    the size and quality it wants. Several requests are served by one pass
    (`decode_requests`): copy detection's sampling grid and the quality model's windows
    of consecutive native frames, say.

    `exact`: each time gets the frame nearest it (explicit times); otherwise (a periodic
    grid of `fps`, or `count` slots) any frame within half a sample interval will do,
    which allows the keyframe-only and reference-only shortcuts. `fast` accepts frames
    decoded without the loop filter; one request that needs it keeps it for all."""

    targets: np.ndarray  # sorted seconds
    exact: bool = False
    fps: float | None = None  # the grid's rate, when periodic
    size: tuple[int, int] | None = None
    max_side: int | None = None
    fast: bool = True

    def spacing(self, frame_rate: float) -> float:
        """Seconds between samples, as far as the shortcuts are concerned."""
        if self.exact:
            return 1.0 / frame_rate  # only the shortcuts that cannot move a sample
        if self.fps:
            return 1.0 / self.fps
        return float(np.min(np.diff(self.targets))) if len(self.targets) > 1 else np.inf

    def tolerance(self, frame_rate: float) -> float:
        spacing = self.spacing(frame_rate)
        # Half a step, and a microsecond: a target halfway between two frames (slot
        # midpoints over every frame) must not lose both to rounding.
        tolerance = spacing / 2 + 1e-6 if np.isfinite(spacing) else 1.0
        if self.exact:
            tolerance = max(tolerance, 2.0 / frame_rate)  # VFR: the nearest frame may be further
        return tolerance


class Picker:
    """Serves sorted targets from frames offered in presentation order: each target takes
    the nearer of the frames either side of it, if within the target's tolerance. The
    decode loop and the every-frame stream (`iter_frames(picker=...)`) share it. A chosen
    frame is handed to `convert(owner, frame)` at once (RGB at its consumer's size), so
    no decoded native frame is held longer than the two it chooses between."""

    def __init__(
        self,
        targets: np.ndarray,
        tolerances: np.ndarray,
        owners: np.ndarray,
        convert: Any,
    ):
        order = np.argsort(targets, kind="stable")
        self.targets, self.tolerances, self.owners = targets[order], tolerances[order], owners[order]
        self.max_tolerance = float(self.tolerances.max()) if len(self.tolerances) else 0.0
        self.convert = convert
        self.i = 0
        self.chosen: list[tuple[int, float, Any]] = []  # (owner, pts seconds, converted frame)
        self.prev: Any = None
        self.prev_t = -np.inf

    @property
    def done(self) -> bool:
        return self.i >= len(self.targets)

    @property
    def next_target(self) -> float:
        return float(self.targets[self.i])

    def can_pick(self, t: float) -> bool:
        """Whether a frame shown at `t` s is within some target's tolerance. A frame that is
        not can never be chosen, and dropping it changes no choice: each target takes the
        nearer of its neighbours only within its tolerance, and a nearer one is kept."""
        reach = self.max_tolerance + 1e-9  # the exact test below decides; this only narrows
        lo, hi = (
            np.searchsorted(self.targets, t - reach, "left"),
            np.searchsorted(self.targets, t + reach, "right"),
        )
        return bool(np.any(np.abs(self.targets[lo:hi] - t) <= self.tolerances[lo:hi]))

    def _choose(self, t: float, frame: Any) -> None:
        owner = int(self.owners[self.i])
        self.chosen.append((owner, t, self.convert(owner, frame)))

    def offer(self, t: float, frame: Any) -> None:
        while self.i < len(self.targets) and t >= self.targets[self.i]:
            target = self.targets[self.i]
            use_prev = self.prev is not None and target - self.prev_t <= t - target
            best, best_t = (self.prev, self.prev_t) if use_prev else (frame, t)
            if abs(best_t - target) <= self.tolerances[self.i]:
                self._choose(best_t, best)
            self.i += 1
        self.prev, self.prev_t = frame, t

    def forget(self) -> None:
        """After a seek the last frame is no longer the one before the next."""
        self.prev, self.prev_t = None, -np.inf

    def finish(self) -> None:
        """Past the last frame: the last one serves the targets it is close to."""
        while self.i < len(self.targets) and self.prev is not None:
            if abs(self.targets[self.i] - self.prev_t) <= self.tolerances[self.i]:
                self._choose(self.prev_t, self.prev)
            self.i += 1


def picker_for(video: DecodableVideo, requests: list[Request]) -> Picker:
    """A `Picker` over every request's targets, converting each pick to its request's size."""
    info = video.info
    frame_rate = info.fps or 25.0
    sizes = [output_size(info.width, info.height, r.size, r.max_side) for r in requests]
    targets = np.concatenate([np.asarray(r.targets, np.float64) for r in requests] or [np.zeros(0)])
    tolerances = np.concatenate([np.full(len(r.targets), r.tolerance(frame_rate)) for r in requests] or [[]])
    owners = np.concatenate([np.full(len(r.targets), k) for k, r in enumerate(requests)] or [[]])
    return Picker(
        targets, tolerances, owners.astype(int), convert=lambda k, f: to_rgb(f, sizes[k], info.rotation)
    )


def picked_frames(
    video: DecodableVideo, requests: list[Request], picker: Picker, stats: dict
) -> list[Frames]:
    """Each request's chosen frames (already converted by the picker), as one `Frames` each."""
    info = video.info
    out = []
    for k, r in enumerate(requests):
        w, h = output_size(info.width, info.height, r.size, r.max_side)
        mine = [(t, image) for owner, t, image in picker.chosen if owner == k]
        images = np.stack([image for _, image in mine]) if mine else np.zeros((0, h, w, 3), np.uint8)
        times = np.asarray([t for t, _ in mine], np.float64)
        out.append(Frames(images, times, {**stats, "samples": len(mine), "requested": len(r.targets)}))
    return out


def decode_samples(
    video: DecodableVideo,
    targets: np.ndarray,
    *,
    fps: float | None,
    size: tuple[int, int] | None,
    max_side: int | None,
    fast: bool,
    exact: bool = False,
    deadline: float | None = None,
) -> Frames:
    """Decode the frames nearest `targets` (one `Request`; see `decode_requests`)."""
    request = Request(np.asarray(targets, np.float64), exact, fps, size, max_side, fast)
    return decode_requests(video, [request], deadline=deadline)[0]


def decode_requests(
    video: DecodableVideo, requests: list[Request], deadline: float | None = None
) -> list[Frames]:
    """Serve every request from one pass over the stream; one `Frames` per request.

    `deadline` (a `time.monotonic()` value) stops the work with `DeadlineExceeded` once
    passed: an upload-time job would rather fall back than wait.

    The shortcuts are the ones every request allows: keyframes only when keyframes are at
    least as dense as every request's samples, non-reference frames skipped when every
    request is periodic, `fast` and sparse enough; a seek when the next target of any
    request lies beyond the next keyframe by more than `SEEK_MIN_GAP`.
    """
    info = video.info
    if sum(len(r.targets) for r in requests) == 0:
        return picked_frames(video, requests, picker_for(video, requests), {})
    frame_rate = info.fps or 25.0
    spacing = min(r.spacing(frame_rate) for r in requests if len(r.targets))
    fast = all(r.fast for r in requests if len(r.targets))

    index = None if is_url(video.path) else video.index()
    keyframes_only = (
        index is not None
        and index.keyframe_interval is not None
        and index.keyframe_interval <= spacing + 1e-6
    )
    # Skipping non-reference frames leaves gaps of a few frames; only worth it (and only
    # safe for the tolerance) when samples are at least NONREF_MIN_SPACING frames apart.
    skip_nonref = fast and spacing * frame_rate >= NONREF_MIN_SPACING
    strategy = "keyframes" if keyframes_only else ("reference" if skip_nonref else "all")
    skip = {"keyframes": "NONKEY", "reference": "NONREF", "all": "DEFAULT"}[strategy]
    tb, start = video.time_base, video.start_pts
    picker = picker_for(video, requests)
    decoder = _Decoder(video, skip, fast, needed=lambda pts: picker.can_pick(float((pts - start) * tb)))
    n = len(picker.targets)
    last_seek = np.iinfo(np.int64).min  # pts of the last keyframe sought
    while not picker.done:
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceeded(f"{video.path}: decoding passed its deadline at {picker.i} of {n} samples")
        frame = decoder.next()
        if frame is None:
            break
        t = (frame.pts - start) * tb
        picker.offer(t, frame)
        if not picker.done and index is not None and not keyframes_only and len(index.key_pts):
            # Seek when the next sample's keyframe is far ahead of where decoding is. Each
            # seek goes to a later keyframe than the last one, so the loop always ends even
            # when a demuxer lands short of the keyframe asked for.
            j = max(0, int(np.searchsorted(index.key_times, picker.next_target, side="right")) - 1)
            if index.key_times[j] - t > SEEK_MIN_GAP and index.key_pts[j] > last_seek:
                last_seek = int(index.key_pts[j])
                decoder.seek(last_seek)
                picker.forget()
    picker.finish()

    if decoder.decoded == 0:
        raise MediaError(f"{video.path}: no decodable video frames")
    stats = {
        "strategy": strategy,
        "decoded": decoder.decoded,
        "seeks": decoder.seeks,
        "corrupt_packets": decoder.corrupt,
    }
    return picked_frames(video, requests, picker, stats)


def iter_decoded(video: DecodableVideo, deadline: float | None = None):
    """Yield (seconds from the start, decoded frame) for every frame, from the start, in
    constant memory, times kept increasing. `deadline` (a `time.monotonic()` value) raises
    `DeadlineExceeded` once passed."""
    decoder = _Decoder(video, "DEFAULT", fast=False)
    tb, start = video.time_base, video.start_pts
    last = -np.inf
    while (frame := decoder.next()) is not None:
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExceeded(f"{video.path}: decoding passed its deadline")
        t = (frame.pts - start) * tb
        if t <= last:  # a repeated or out-of-order stamp: keep the output's times increasing
            t = last + 1e-3
        last = t
        yield float(t), frame
    if decoder.decoded == 0:
        raise MediaError(f"{video.path}: no decodable video frames")


def iter_frames(video: DecodableVideo, deadline: float | None = None, picker: Picker | None = None):
    """Yield (seconds from the start, RGB frame) for every frame, decoding once from the
    start in constant memory (what a full-video job such as enhancement needs). A `picker`
    is offered every frame on the way, so other consumers' samples come from the same
    decode (call its `finish()` after the last frame)."""
    info = video.info
    out_wh = output_size(info.width, info.height, None, None)
    for t, frame in iter_decoded(video, deadline):
        if picker is not None:
            picker.offer(t, frame)
        yield t, to_rgb(frame, out_wh, info.rotation)


def iter_frames_at(video: DecodableVideo, times: np.ndarray, size: tuple[int, int] | None = None):
    """Yield, for each of the non-decreasing `times`, the RGB frame nearest it, decoding the
    stream once from the start (constant memory; repeated times repeat a frame)."""
    times = np.asarray(times, dtype=np.float64)
    if len(times) and np.any(np.diff(times) < -1e-9):
        raise MediaError("iter_frames_at needs non-decreasing times")
    info = video.info
    out_wh = output_size(info.width, info.height, size, None)
    decoder = _Decoder(video, "DEFAULT", fast=False)
    tb, start = video.time_base, video.start_pts
    prev = cur = None
    prev_t = cur_t = -np.inf
    for target in times:
        while cur_t < target:  # advance until the current frame is at/after the target
            frame = decoder.next()
            if frame is None:
                break
            prev, prev_t = cur, cur_t
            cur, cur_t = frame, (frame.pts - start) * tb
        if cur is None:
            raise MediaError(f"{video.path}: no decodable video frames")
        best = prev if prev is not None and target - prev_t < cur_t - target else cur
        yield to_rgb(best, out_wh, info.rotation)
