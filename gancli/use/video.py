"""Latent walks as H.264 video through PyAV (the optional `av` package): GIFs stop scaling past small frames."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import torch

from gancli.errors import UsageError
from gancli.store.files import atomic_path

VIDEO_MIN_SIDE = 256  # small frames are enlarged (nearest neighbour) so players show them sharp


def check_video_support() -> None:
    try:
        import av  # noqa: F401
    except ImportError:
        raise UsageError('--video needs PyAV: pip install "gancli[video]" (or pip install av); --gif needs nothing extra.') from None


def save_video(batches, path: Path, fps: float) -> None:
    """uint8 frames (N, C, H, W), or an iterable of such batches, -> an H.264 MP4 (yuv420p, which every player
    reads: sides made even). Batches are encoded as they come, so memory holds one batch."""
    import av
    import torch.nn.functional as F

    check_video_support()
    batches = [batches] if isinstance(batches, torch.Tensor) else batches
    with atomic_path(path, "--video") as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = None
            for images in batches:
                factor = max(1, -(-VIDEO_MIN_SIDE // max(images.shape[-1], images.shape[-2])))
                frames = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images[:, :3]
                frames = F.interpolate(frames.float(), scale_factor=factor, mode="nearest").to(torch.uint8) if factor > 1 else frames
                height, width = frames.shape[-2] + frames.shape[-2] % 2, frames.shape[-1] + frames.shape[-1] % 2
                frames = F.pad(frames, (0, width - frames.shape[-1], 0, height - frames.shape[-2]))
                if stream is None:
                    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
                    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                    stream.options = {"crf": "18"}
                for frame in frames.permute(0, 2, 3, 1).contiguous().numpy():
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            if stream is not None:
                container.mux(stream.encode(None))  # flush the encoder
