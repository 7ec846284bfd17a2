"""Canvas buckets: the few fixed sizes (and batch) each diffusers backend runs at.

A compiled denoiser (``torch.compile``) specialises on its input shapes: every new
height × width × batch costs a recompile (minutes with ``max-autotune``) in the middle of a
job. So a backend runs at one of a small fixed set of sizes, each with a fixed batch: the
request's canvas (already at the backend's native area, see
:func:`generation.render.native_size`) is scaled to fit the bucket of the nearest aspect,
padded to it (the padding is generated and cropped away, like :func:`~.base.pad_to_multiple`'s),
and the scene is resized back to the request's size afterwards. Short batches are padded
with throw-away variants so the batch never changes either.

Torch-free: the web process and the tests read the table without the ML stack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "BUCKETS",
    "MAX_ASPECT_ERROR",
    "Bucket",
    "Placement",
    "aspect_error",
    "buckets_for",
    "nearest_bucket",
    "place_in_bucket",
]

#: Largest ``|ln(request aspect / bucket aspect)|`` a request is bucketed at: beyond it (a
#: custom 4:1 canvas, say) the padding would waste more than about a fifth of the compute, and
#: the request runs at its own size instead (one extra compile for that shape).
MAX_ASPECT_ERROR = 0.2


@dataclass(frozen=True)
class Bucket:
    """One size a backend runs at: ``width × height`` pixels, ``batch`` variants per call."""

    width: int
    height: int
    batch: int = 4

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def __str__(self) -> str:
        return f"{self.width}x{self.height}x{self.batch}"


def _ladder(square: int, pairs: tuple[tuple[int, int], ...], batch: int) -> tuple[Bucket, ...]:
    buckets = [Bucket(square, square, batch)]
    for width, height in pairs:
        buckets += [Bucket(width, height, batch), Bucket(height, width, batch)]
    return tuple(buckets)


#: Per backend: 1:1, about 4:5 (0.78) and 5:4, about 9:16 (0.57) and 16:9, at about the
#: backend's training area. SD 1.5 and SDXL sizes are multiples of 64 (the UNet downsamples
#: the latents 3 and 2 times, the VAE 8×); FLUX needs multiples of 16 (VAE 8× and 2×2 latent
#: packing) and uses SDXL's sizes. The channels (:data:`generation.preflight.CHANNELS`) map
#: onto 1024², 896×1152 and 1344×768 (SDXL/FLUX) and 512², 448×576 and 704×384 (SD 1.5).
BUCKETS: dict[str, tuple[Bucket, ...]] = {
    "sd-inpaint": _ladder(512, ((448, 576), (384, 704)), batch=4),
    "sdxl-inpaint": _ladder(1024, ((896, 1152), (768, 1344)), batch=4),
    "flux-fill": _ladder(1024, ((896, 1152), (768, 1344)), batch=4),
}


def buckets_for(backend: str) -> tuple[Bucket, ...]:
    """The backend's buckets; ``()`` for a backend that runs at any size (backdrop-mini)."""
    return BUCKETS.get(backend, ())


def aspect_error(width: int, height: int, bucket: Bucket) -> float:
    """``|ln(aspect / bucket aspect)|``: 0 for the same aspect, symmetric in wide and tall."""
    return abs(math.log((width / height) / bucket.aspect))


def nearest_bucket(buckets: tuple[Bucket, ...], width: int, height: int) -> Bucket | None:
    """The bucket of the nearest aspect (ties: the one nearest in area); ``None`` when there
    are no buckets or the nearest is more than :data:`MAX_ASPECT_ERROR` away."""
    if not buckets:
        return None
    area = width * height
    best = min(buckets, key=lambda b: (round(aspect_error(width, height, b), 9), abs(math.log(b.width * b.height / area))))
    return best if aspect_error(width, height, best) <= MAX_ASPECT_ERROR else None


@dataclass(frozen=True)
class Placement:
    """How a ``width × height`` request sits in its bucket: scaled to ``scaled`` (width,
    height), top-left, the rest of the bucket padding."""

    bucket: Bucket
    scaled: tuple[int, int]

    @property
    def padding_share(self) -> float:
        """Share of the bucket's pixels that are padding (generated, then cropped away)."""
        return 1.0 - (self.scaled[0] * self.scaled[1]) / (self.bucket.width * self.bucket.height)


def place_in_bucket(bucket: Bucket, width: int, height: int) -> Placement:
    """Scale ``width × height`` by the largest factor that fits ``bucket`` (keeping the
    aspect, so nothing is stretched), top-left; the remainder of the bucket is padding."""
    scale = min(bucket.width / width, bucket.height / height)
    scaled = (min(bucket.width, max(8, round(width * scale))), min(bucket.height, max(8, round(height * scale))))
    return Placement(bucket=bucket, scaled=scaled)
