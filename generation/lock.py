"""The pixel lock: the one compositor every generated image goes through.

Vitrine promises that the product in every image it ships is the uploaded product, pixel for
pixel. This module is where that promise is kept and proven:

1. The product layer (RGB + soft matte + hard mask, from a cutout) is placed on the canvas by
   one deterministic :class:`Transform`: scale about the layer's top-left corner with a fixed
   resampling, then an integer-pixel translation. At scale 1 there is no resampling at all, so
   the locked pixels are the photo's decoded pixels.
2. A scene (any RGB array of the canvas size: a diffusion output, :func:`backdrop_fill`)
   fills the rest; an optional multiplicative :func:`contact_shadow` darkens it.
3. Edge pixels inside the soft matte are alpha-blended over the scene.
4. Every pixel inside the placed hard mask is set to the placed product layer exactly.
5. The result is checked independently (:func:`verify_lock`) and a :class:`LockCertificate`
   is returned; a certificate with any changed pixel raises :class:`LockViolation`.

Hashes in certificates (both hex sha256, see :func:`generation.imaging.array_sha256` for the
array convention):

* ``mask_sha256``: sha256 over ``b"vitrine-mask-v1:" + f"{H}x{W}:"`` then the product layer's
  hard mask (photo coordinates) packed row-major with ``numpy.packbits``.
* ``image_sha256``: ``array_sha256`` of the output image as a C-order ``uint8 (H, W, 3)`` RGB
  array, i.e. ``sha256(b"|u1:HxWx3:" + raw RGB bytes)``.
* ``product_sha256``: sha256 over ``b"vitrine-lock-v1:" + f"{H}x{W}:"``, then the placed
  hard mask packed row-major with ``numpy.packbits``, then the placed product RGB bytes under
  that mask in row-major order. Two outputs with the same ``product_sha256`` carry the same
  product pixels at the same places.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from typing import Any

import cv2
import numpy as np
import PIL
from PIL import Image

from generation.imaging import array_sha256, as_rgb_array, bbox_of_mask
from generation.segmentation.base import SegmentationResult

__all__ = [
    "STUDIO_GREY",
    "WHITE",
    "LockCertificate",
    "PIXEL_IDENTICAL",
    "RESAMPLED",
    "RESAMPLE_FILTER",
    "SourceRecord",
    "mask_sha256",
    "LockViolation",
    "PlacedLayer",
    "ProductLayer",
    "Transform",
    "backdrop_fill",
    "composite_locked",
    "contact_shadow",
    "estimate_backdrop_color",
    "place_layer",
    "verify_lock",
]

#: The lock compositor's default backdrop: a neutral, slightly warm studio grey.
STUDIO_GREY: tuple[int, int, int] = (236, 235, 232)
WHITE: tuple[int, int, int] = (255, 255, 255)

#: The two kinds of lock a certificate can name.
PIXEL_IDENTICAL = "pixel-identical"
RESAMPLED = "resampled"

#: The one filter a resampled product goes through, named on every resampled certificate.
#: Pillow's BILINEAR is a triangle filter whose support widens with the reduction factor
#: (antialiased when shrinking) and whose weights are never negative, so a resampled pixel
#: depends only on the source pixels with non-zero weight: where the same filter applied to the
#: hard mask (mode "F") gives exactly 1.0, all of them are product pixels, and the result is a
#: function of the photo's own pixels alone (what lets generation.verify recompute it from the
#: photo with tolerance 0).
RESAMPLE_FILTER = f"pillow-{PIL.__version__}-bilinear"


@dataclass(frozen=True)
class Transform:
    """Placement of the product layer on the canvas.

    Canvas pixel ``(x, y)`` shows layer pixel ``((x - dx) / scale, (y - dy) / scale)``.
    The layer is resampled to ``round(W * scale) x round(H * scale)`` (RGB and hard mask by
    :data:`RESAMPLE_FILTER`; the soft matte, which locks nothing, by ``cv2.INTER_AREA`` /
    ``INTER_LINEAR``) and its top-left corner is put at integer ``(dx, dy)``.
    """

    scale: float = 1.0
    dx: int = 0
    dy: int = 0

    def __post_init__(self) -> None:
        if not (self.scale > 0 and np.isfinite(self.scale)):
            raise ValueError(f"scale must be a positive finite number, got {self.scale!r}")
        for name in ("dx", "dy"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer pixel offset, got {value!r}")

    @property
    def is_identity(self) -> bool:
        """True for scale 1 and no move: the output's locked pixels are the photo's."""
        return self.scale == 1.0 and self.dx == 0 and self.dy == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, for reports and database rows."""
        return {"scale": float(self.scale), "dx": int(self.dx), "dy": int(self.dy)}

    def layer_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """``(width, height)`` of a ``size`` layer after this transform's resampling."""
        w, h = size
        if self.scale == 1.0:
            return w, h
        return max(1, int(round(w * self.scale))), max(1, int(round(h * self.scale)))


@dataclass(frozen=True)
class SourceRecord:
    """Where the locked pixels come from: the start of the certificate's hash chain.

    ``original_sha256``: sha256 of the uploaded file's bytes; ``working_sha256``:
    ``array_sha256`` of the decoded working pixels (uint8 RGB, upright, size-capped);
    ``working_max_side``: the long-side cap the working copy was made under;
    ``colour_conversion``: what the working copy's decode did to the colours
    (``generation.decoding.working_copy``'s record: ``source_profile`` (the embedded profile's
    description, or None), ``profile_sha256``, ``intent``, ``converted``); None when not recorded.
    """

    original_sha256: str = ""
    working_sha256: str = ""
    working_max_side: int | None = None
    colour_conversion: dict | None = None
    cutout_revision: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class ProductLayer:
    """The product as the compositor sees it, in photo coordinates.

    ``rgb`` is ``uint8 (H, W, 3)``, ``alpha`` ``float32 (H, W)`` in ``[0, 1]``, ``mask``
    ``bool (H, W)`` (the pixels to lock).
    """

    rgb: np.ndarray
    alpha: np.ndarray
    mask: np.ndarray

    def __post_init__(self) -> None:
        rgb = as_rgb_array(self.rgb)
        h, w = rgb.shape[:2]
        if self.alpha.shape != (h, w) or self.mask.shape != (h, w):
            raise ValueError(
                f"rgb {rgb.shape}, alpha {self.alpha.shape} and mask {self.mask.shape} "
                "must have the same height and width"
            )
        object.__setattr__(self, "rgb", rgb)
        object.__setattr__(
            self, "alpha", np.clip(self.alpha.astype(np.float32, copy=False), 0.0, 1.0)
        )
        object.__setattr__(self, "mask", self.mask.astype(bool, copy=False))

    @classmethod
    def from_segmentation(cls, result: SegmentationResult) -> ProductLayer:
        """Layer from a cutout: decontaminated colours (equal to the photo under the mask)."""
        return cls(rgb=result.foreground, alpha=result.alpha, mask=result.mask)


@dataclass(frozen=True, eq=False)
class PlacedLayer:
    """The product layer after the transform, in canvas coordinates (canvas-sized arrays)."""

    rgb: np.ndarray
    alpha: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class LockCertificate:
    """Proof that an image carries the product layer's pixels under the mask.

    Fields (``to_dict()`` gives plain JSON with these keys, plus ``passed`` and ``badge``):

    * ``kind``: ``"pixel-identical"`` (scale 1, integer offset: the locked pixels are the
      working photo's decoded pixels) or ``"resampled"`` (the photo resampled by ``filter``).
    * ``filter``: :data:`RESAMPLE_FILTER` for resampled, ``"none"`` for pixel-identical.
    * ``tolerance``: the largest per-channel difference the verifier accepts (0: bit-exact).
    * ``locked_pixels``, ``changed_pixels`` (locked pixels where any channel differs from the
      placed product layer), ``max_abs_diff``: the compositor's own count.
    * ``transform`` (``{"scale", "dx", "dy"}``), ``canvas_size`` (``[width, height]``).
    * the hash chain, see the module docstring: ``original_sha256``, ``working_sha256``,
      ``working_max_side``, ``colour_conversion``, ``cutout_revision``, ``mask_sha256``,
      ``product_sha256``, ``image_sha256``.
    """

    locked_pixels: int
    changed_pixels: int
    max_abs_diff: int
    transform: Transform
    canvas_size: tuple[int, int]
    product_sha256: str
    image_sha256: str
    kind: str = PIXEL_IDENTICAL
    filter: str = "none"
    tolerance: int = 0
    mask_sha256: str = ""
    original_sha256: str = ""
    working_sha256: str = ""
    working_max_side: int | None = None
    colour_conversion: dict | None = None
    cutout_revision: int | None = None

    def __post_init__(self) -> None:
        identical = self.transform.scale == 1.0
        if (self.kind == PIXEL_IDENTICAL) != identical:
            raise ValueError(f"a {self.kind} lock cannot have scale {self.transform.scale}")

    @property
    def badge(self) -> str:
        """What every badge says about this lock."""
        if self.kind == PIXEL_IDENTICAL:
            return "Product pixels identical to your photo"
        return f"Product resized {self.transform.scale:.2f}× from your photo, nothing else changed"

    def with_source(self, source: SourceRecord) -> LockCertificate:
        return replace(self, **source.to_dict())

    @property
    def passed(self) -> bool:
        """True when every locked pixel is exactly the product's."""
        return self.changed_pixels == 0 and self.max_abs_diff == 0

    def require(self) -> LockCertificate:
        """Return self if it passed; raise :class:`LockViolation` otherwise."""
        if not self.passed:
            raise LockViolation(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, stored with each asset and in ``report.json``."""
        data = asdict(self)
        data["transform"] = self.transform.to_dict()
        data["canvas_size"] = list(self.canvas_size)
        data["passed"] = self.passed
        data["badge"] = self.badge
        return data


class LockViolation(AssertionError):
    """An image meant to carry the locked product does not; never ship it."""

    def __init__(self, certificate: LockCertificate) -> None:
        self.certificate = certificate
        super().__init__(
            f"pixel lock violated: {certificate.changed_pixels} of "
            f"{certificate.locked_pixels} locked pixels changed "
            f"(max abs diff {certificate.max_abs_diff}) under {certificate.transform}"
        )


def _resample(arr: np.ndarray, size: tuple[int, int], scale: float) -> np.ndarray:
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(arr, size, interpolation=interpolation)


def _resample_locked(rgb: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The product's RGB and hard mask through :data:`RESAMPLE_FILTER` (see there)."""
    out = np.asarray(Image.fromarray(rgb, "RGB").resize(size, Image.Resampling.BILINEAR))
    coverage = np.asarray(Image.fromarray(mask.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR))
    return out, coverage == 1.0


def place_layer(
    layer: ProductLayer, transform: Transform, canvas_size: tuple[int, int]
) -> PlacedLayer:
    """Apply ``transform`` to ``layer`` and paste it on an empty canvas of ``(width, height)``.

    Parts that fall outside the canvas are cropped; pixels outside the layer have alpha 0 and
    are not locked.
    """
    cw, ch = canvas_size
    h, w = layer.mask.shape
    if transform.scale == 1.0:
        rgb, alpha, mask = layer.rgb, layer.alpha, layer.mask
    else:
        sw, sh = transform.layer_size((w, h))
        rgb, mask = _resample_locked(layer.rgb, layer.mask, (sw, sh))
        alpha = np.clip(_resample(layer.alpha, (sw, sh), transform.scale), 0.0, 1.0)
    lh, lw = mask.shape

    out_rgb = np.zeros((ch, cw, 3), np.uint8)
    out_alpha = np.zeros((ch, cw), np.float32)
    out_mask = np.zeros((ch, cw), bool)
    # Intersection of the placed layer with the canvas, in canvas and in layer coordinates.
    x0, y0 = max(0, transform.dx), max(0, transform.dy)
    x1, y1 = min(cw, transform.dx + lw), min(ch, transform.dy + lh)
    if x1 > x0 and y1 > y0:
        lx0, ly0 = x0 - transform.dx, y0 - transform.dy
        lx1, ly1 = lx0 + (x1 - x0), ly0 + (y1 - y0)
        out_rgb[y0:y1, x0:x1] = rgb[ly0:ly1, lx0:lx1]
        out_alpha[y0:y1, x0:x1] = alpha[ly0:ly1, lx0:lx1]
        out_mask[y0:y1, x0:x1] = mask[ly0:ly1, lx0:lx1]
    return PlacedLayer(rgb=out_rgb, alpha=out_alpha, mask=out_mask)


def _product_sha256(placed: PlacedLayer) -> str:
    h, w = placed.mask.shape
    digest = hashlib.sha256(f"vitrine-lock-v1:{h}x{w}:".encode("ascii"))
    digest.update(np.packbits(placed.mask).tobytes())
    digest.update(np.ascontiguousarray(placed.rgb[placed.mask]).tobytes())
    return digest.hexdigest()


def mask_sha256(mask: np.ndarray) -> str:
    """The hard mask's hash (module docstring): what the certificate pins the cutout by."""
    h, w = mask.shape
    digest = hashlib.sha256(f"vitrine-mask-v1:{h}x{w}:".encode("ascii"))
    digest.update(np.packbits(mask.astype(bool)).tobytes())
    return digest.hexdigest()


def _certify(image: np.ndarray, placed: PlacedLayer, transform: Transform, layer: ProductLayer) -> LockCertificate:
    expected = placed.rgb[placed.mask].astype(np.int16)
    actual = image[placed.mask].astype(np.int16)
    diff = np.abs(actual - expected)
    changed = int(np.count_nonzero(diff.any(axis=1))) if diff.size else 0
    return LockCertificate(
        locked_pixels=int(np.count_nonzero(placed.mask)),
        changed_pixels=changed,
        max_abs_diff=int(diff.max()) if diff.size else 0,
        transform=transform,
        canvas_size=(int(image.shape[1]), int(image.shape[0])),
        product_sha256=_product_sha256(placed),
        image_sha256=array_sha256(image),
        kind=PIXEL_IDENTICAL if transform.scale == 1.0 else RESAMPLED,
        filter="none" if transform.scale == 1.0 else RESAMPLE_FILTER,
        mask_sha256=mask_sha256(layer.mask),
    )


def verify_lock(
    *, image: np.ndarray, layer: ProductLayer, transform: Transform = Transform()
) -> LockCertificate:
    """Check an arbitrary RGB image against a product layer placed by ``transform``.

    Never raises for a failed lock: the certificate says what is wrong (this is how a raw
    diffusion output is shown not to carry the product). Call ``.require()`` to enforce.
    """
    image = as_rgb_array(image)
    placed = place_layer(layer, transform, (image.shape[1], image.shape[0]))
    return _certify(image, placed, transform, layer)


def composite_locked(
    *,
    layer: ProductLayer,
    scene: np.ndarray,
    transform: Transform = Transform(),
    shadow: np.ndarray | None = None,
) -> tuple[np.ndarray, LockCertificate]:
    """Compose the product over ``scene`` and lock its pixels; return ``(image, certificate)``.

    Args:
        layer: the product layer in photo coordinates.
        scene: ``uint8 (H, W, 3)``; the canvas size is the scene's size.
        transform: placement of the layer on the canvas.
        shadow: optional ``float32 (H, W)`` multiplicative map in ``[0, 1]`` applied to the
            scene before the product is blended (see :func:`contact_shadow`).

    Raises:
        LockViolation: if the output does not carry the placed product exactly (a bug, never
            an expected outcome: the last step writes those pixels verbatim).
    """
    scene = as_rgb_array(scene)
    ch, cw = scene.shape[:2]
    placed = place_layer(layer, transform, (cw, ch))
    out = scene.copy()
    if shadow is not None:
        if shadow.shape != (ch, cw):
            raise ValueError(f"shadow shape {shadow.shape} != canvas {(ch, cw)}")
        shaded = np.clip(shadow, 0.0, 1.0).astype(np.float32)[:, :, None] * scene
        out = np.clip(np.rint(shaded), 0, 255).astype(np.uint8)

    # Blend only where the matte is non-zero; on large canvases this is a small window.
    box = bbox_of_mask(placed.alpha > 0)
    if box is not None:
        x0, y0, x1, y1 = box
        a = placed.alpha[y0:y1, x0:x1, None]
        blended = placed.rgb[y0:y1, x0:x1] * a + out[y0:y1, x0:x1] * (1.0 - a)
        out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    # The lock itself: soft blending never decides a locked pixel.
    out[placed.mask] = placed.rgb[placed.mask]

    certificate = _certify(out, placed, transform, layer).require()
    return out, certificate


def backdrop_fill(
    *,
    size: tuple[int, int],
    color: tuple[int, int, int] = STUDIO_GREY,
    sweep: float = 0.0,
) -> np.ndarray:
    """The lock compositor's own scene: a plain backdrop of ``(width, height)``.

    ``sweep`` in ``[0, 1)`` darkens the top of the frame by that fraction, fading linearly to
    the plain colour at the bottom (a studio paper sweep). ``sweep=0`` gives an exactly
    uniform fill (what marketplace-white needs with ``color=WHITE``).
    """
    w, h = size
    base = np.empty((h, w, 3), np.uint8)
    base[:] = np.asarray(color, np.uint8)
    if sweep <= 0.0:
        return base
    ramp = 1.0 - sweep * (1.0 - np.linspace(0.0, 1.0, h, dtype=np.float32))
    return np.clip(np.rint(base * ramp[:, None, None]), 0, 255).astype(np.uint8)


def estimate_backdrop_color(
    image: np.ndarray, alpha: np.ndarray, *, margin: int = 8
) -> tuple[int, int, int]:
    """Median colour of the photo's background, ``margin`` pixels away from the product.

    Used to fill a scene with the photo's own backdrop. Falls back to :data:`STUDIO_GREY`
    when no background pixel is left (a product filling the frame).
    """
    image = as_rgb_array(image)
    background = (alpha <= 0).astype(np.uint8)
    if margin > 0:
        kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
        background = cv2.erode(background, kernel, borderType=cv2.BORDER_REPLICATE)
    pixels = image[background.astype(bool)]
    if pixels.shape[0] == 0:
        return STUDIO_GREY
    r, g, b = np.median(pixels, axis=0)
    return int(round(r)), int(round(g)), int(round(b))


def contact_shadow(
    *,
    mask: np.ndarray,
    opacity: float = 0.35,
    height_ratio: float = 0.10,
    width_ratio: float = 0.9,
    softness: float = 0.35,
) -> np.ndarray:
    """A soft contact shadow for the placed product: a multiplicative map ``float32 (H, W)``.

    A filled ellipse centred on the bottom edge of ``mask``'s bounding box, ``width_ratio``
    times the box width wide and ``height_ratio`` times that width tall, blurred with a
    Gaussian whose sigma is ``softness`` times the ellipse height, then mapped to
    ``1 - opacity * shape``. Pass it as ``shadow=`` to :func:`composite_locked`; the product
    covers its upper half, so only the part peeking out below the product shows.
    Returns all ones for an empty mask.
    """
    h, w = mask.shape
    shadow = np.ones((h, w), np.float32)
    box = bbox_of_mask(mask)
    if box is None or opacity <= 0:
        return shadow
    x0, y0, x1, y1 = box
    axis_x = max(1, int(round((x1 - x0) * width_ratio / 2)))
    axis_y = max(1, int(round((x1 - x0) * width_ratio * height_ratio / 2)))
    shape = np.zeros((h, w), np.float32)
    centre = (int(round((x0 + x1 - 1) / 2)), int(y1 - 1))
    cv2.ellipse(shape, centre, (axis_x, axis_y), 0, 0, 360, 1.0, thickness=-1)
    sigma = max(0.5, softness * 2 * axis_y)
    shape = cv2.GaussianBlur(shape, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return (1.0 - float(opacity) * np.clip(shape, 0.0, 1.0)).astype(np.float32)
