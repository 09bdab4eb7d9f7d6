"""Reading frames from an image, a folder of images or a video, and writing results.

Video goes through PyAV (FFmpeg bindings, maintained); images through Pillow. Every writer goes
through ``siam_jax.common.files.atomic_path`` (a temporary name in the destination folder, renamed
into place), so an interrupted demo leaves no half-written file behind.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from jaxtyping import Float, Int, UInt8

from siam_jax.common.files import atomic_path, write_text

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


@dataclasses.dataclass(frozen=True)
class Frame:
    name: str  # file stem of an image, or "frame_%06d" for video frames
    image: np.ndarray  # [H W 3] uint8 RGB


@dataclasses.dataclass(frozen=True)
class Source:
    kind: str  # "image" | "folder" | "video"
    path: Path
    num_frames: int | None
    fps: float


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from e


def open_source(path: str | os.PathLike) -> Source:
    """Classifies ``path``; raises a clear error for a missing or unsupported input."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ValueError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return Source("folder", path, len(images), 30.0)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return Source("image", path, 1, 30.0)
    if suffix in VIDEO_SUFFIXES:
        import av

        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                fps = float(stream.average_rate or 30.0)
                frames = stream.frames or None
        except (av.error.FFmpegError, IndexError) as e:
            raise ValueError(f"cannot read video {path}: {e}") from e
        return Source("video", path, frames, fps)
    raise ValueError(
        f"unsupported input {path}: expected an image ({', '.join(IMAGE_SUFFIXES)}), "
        f"a folder of images, or a video ({', '.join(VIDEO_SUFFIXES)})"
    )


def iter_frames(source: Source) -> Iterator[Frame]:
    """Yields the frames of ``source`` in order, decoded to RGB uint8."""
    if source.kind == "image":
        yield Frame(source.path.stem, _read_image(source.path))
    elif source.kind == "folder":
        for p in sorted(source.path.iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                yield Frame(p.stem, _read_image(p))
    else:
        import av

        try:
            with av.open(str(source.path)) as container:
                for i, frame in enumerate(container.decode(video=0)):
                    yield Frame(f"frame_{i:06d}", frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as e:
            raise ValueError(f"cannot decode video {source.path}: {e}") from e


def write_image(path: str | os.PathLike, image: UInt8[np.ndarray, "h w 3"]) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp)


class VideoWriter:
    """H.264 MP4 writer (PyAV) that renames the finished file into place on ``close``."""

    def __init__(self, path: str | os.PathLike, fps: float):
        import av

        self.path = Path(path)
        self._target = atomic_path(self.path)
        self._tmp = self._target.__enter__()
        self._av = av
        self._container = av.open(self._tmp, mode="w", format="mp4")
        self._stream = None
        self._fps = fps

    def write(self, image: UInt8[np.ndarray, "h w 3"]) -> None:
        image = np.asarray(image, dtype=np.uint8)
        h, w = image.shape[:2]
        image = image[: h - h % 2, : w - w % 2]  # yuv420p needs even sizes
        if self._stream is None:
            from fractions import Fraction

            self._stream = self._container.add_stream(
                "libx264", rate=Fraction(self._fps).limit_denominator(1001)
            )
            self._stream.height, self._stream.width = image.shape[:2]
            self._stream.pix_fmt = "yuv420p"
        frame = self._av.VideoFrame.from_ndarray(image, format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
        self._target.__exit__(None, None, None)  # renames the finished file into place

    def abort(self) -> None:
        self._container.close()
        err = RuntimeError("video writer aborted")
        self._target.__exit__(type(err), err, None)  # removes the temporary file

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_obj(
    path: str | os.PathLike, vertices: Float[np.ndarray, "v 3"], faces: Int[np.ndarray, "f 3"]
) -> None:
    """Wavefront OBJ (1-based face indices), written atomically."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(vertices, dtype=np.float64)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, dtype=np.int64)]
    write_text(path, "\n".join(lines) + "\n")


def list_inputs(path: str | os.PathLike) -> tuple[list[Path], bool]:
    """``([inputs], batch)``: the videos of a folder of videos (batch), else ``[path]``.

    A folder holding both videos and images is ambiguous and refused with a clear error.
    """
    path = Path(path)
    if not path.is_dir():
        return [path], False
    files = sorted(p for p in path.iterdir() if p.is_file())
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if videos and images:
        raise ValueError(
            f"folder {path} holds both videos ({videos[0].name}, ...) and images "
            f"({images[0].name}, ...): pass a folder of videos or a folder of images"
        )
    return (videos, True) if videos else ([path], False)
