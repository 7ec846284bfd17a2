"""The weight-free ``graphcut`` segmenter for product photos on plain or studio backgrounds:
a background model fitted to the frame border, a GrabCut graph cut, and a soft matte solved
per pixel against the known background.

It was called ``studio`` until that word came to mean the Django app; ``get_segmenter`` still
accepts ``"studio"`` as a deprecated alias of ``"graphcut"``.

How it works (each step at the resolution where it is cheap enough):

1. **Working resolution.** The photo is shrunk (area resampling) to about
   ``work_pixels`` pixels; steps 2-5 run there.
2. **Background model.** A smooth quadratic colour surface per channel is fitted by robust
   least squares to a strip along the frame border (so white, grey, pastel and gradient sweeps
   are all "plain"); the residuals give a per-channel noise level. Border pixels that the
   product covers are rejected as outliers. Where the left and right strips show the same
   colour step at about the same height (a wall meeting a table top) the strip is split at
   that straight horizon and a surface is fitted on each side, with a ramp between them;
   near the line each pixel's background is the blend of the two that matches it best.
3. **Evidence.** Every pixel is compared with the model twice: total distance, and distance
   after the best brightness scaling of the background (``I ~ k B``). A cast shadow is darker
   background with the same chroma (small scaled distance, ``k < 1``) so it is *not* product
   evidence; strong chroma, brighter-than-background or near-black pixels are. White-on-white
   products differ from the background only by shading, so *sharp* edges (gradient large
   relative to local contrast: a shadow's edge is soft) also count as product evidence. A
   region brighter than the model, of its hue or raised towards white, with sharp pixels
   along under :data:`GLOW_MAX_SHARP_SHARE` of its outline is a light's hot spot: background.
4. **Seeds.** Background-like and shadow-like pixels reachable from the border without
   crossing product evidence are background; regions enclosed by product evidence are product,
   except background-coloured islands (the hole of a handle shows background and stays
   background). Where an outline fades out against a shadow of the product's own tone the
   flood leaks inside; sealing gaps up to 8 % of the frame detects this, and then the convex
   hull of the product evidence (minus plain-background pixels) counts as product. Such
   results are flagged ``open-outline``: a concave white product whose hollows show a shaded
   backdrop would be over-filled, so a person looks at them.
5. **Graph cut.** ``cv2.grabCut`` refines the seeds on a crop around the product. Regions of
   the mask that are statistically the backdrop (background showing between legs, spokes or
   wings, which the seeds' sealed barrier closed; also backdrop crossed by a shadow or lit a
   little more than the fitted surface) are opened again, and a cast shadow seen through a
   gap (:meth:`GraphCutSegmenter._drop_cast_shadow`) is dropped. A glossy floor's
   reflection, the product mirrored about its base and faded (:func:`_drop_reflection`), is
   taken out and noted ``reflection-removed``, and the mask is cut again with the mirror
   image as backdrop.
6. **Full-resolution boundary band.** Only tiles crossed by the boundary are visited at full
   resolution: local background (shadow included) and product colours are interpolated from
   the working resolution and the matte is solved per pixel from the compositing equation
   (:func:`generation.matting.known_background_alpha`); where product and background colours
   are too close for that (white on white) a guided filter snaps the upsampled mask to the
   photo's edges. Edge colours are decontaminated with the same background estimate.
7. **Lock region.** Besides the rule in
   :data:`generation.segmentation.base.LOCK_ALPHA_THRESHOLD`, a boundary pixel is
   certified only where the per-pixel solution is trusted (enough contrast, a uniform local
   product colour) or well inside the edge-snapped mask; with an open outline only the
   former. Other pixels are still drawn with their alpha, just not certified.

Confidence: ``edge_confidence`` is the fraction of the boundary backed by colour contrast or a
sharp edge; the result is marked not ``confident`` (with ``notes``) for weak edges
(``weak-edges``, below :data:`MIN_EDGE_CONFIDENCE`), a busy border (``busy-background``), an
open outline (``open-outline``), a reflection taken out (``reflection-removed``), a product
touching much of the frame edge (``touches-border``)
or running off two or more sides (``leaves-frame``), a mask that moves when it is cut again
from a coarser grid with a wider background strip (``unstable``, :data:`STABLE_IOU`), an outline
that could move by 5 % of the product's area within the matte's soft ramp (``soft-edges``,
:func:`_edge_uncertainty`, :data:`MAX_EDGE_UNCERTAINTY`), the shape
doubts of :func:`_shape_doubts`, a tiny or frame-filling product (``tiny``, ``fills-frame``) or
nothing found (``empty``). The thresholds were set on the synthetic bench sets only; the
real-object set is for measuring them. Shiny and see-through products are
handled only as well as these cues allow: a reflection inside the outline is kept unless it
is exactly the backdrop's colour, and a window that shows the plain backdrop becomes a hole.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image

from generation.imaging import as_rgb_array, downscale_to_pixels
from generation.matting import (
    decontaminate,
    guided_filter,
    known_background_alpha,
    normalized_blur,
    snap_alpha,
)
from generation.segmentation.base import SegmentationResult, result_from_alpha

__all__ = ["BackgroundModel", "GraphCutSegmenter", "fit_background"]

VERSION = "graphcut-1.0"

_TILE = 256
#: OpenCV RNG seed set before every graph cut, so a photo always gives the same cutout.
GRABCUT_SEED = 12345
#: Below this IoU between the mask and its perturbed re-run the cutout is noted ``unstable``.
#: Derived on the synthetic sets (``bench/segmentation.py --set dev/heldout/studio``, two renders
#: each): every mask at IoU >= 0.95 agreed with its re-run to 0.936 or more.
STABLE_IOU = 0.93
#: Below this ``edge_confidence`` (share of the boundary backed by colour contrast or a sharp
#: edge) the cutout is noted ``weak-edges``. On the synthetic sets every mask at IoU >= 0.98 had
#: 0.98 or more, and every one under 0.95 IoU (horizon, hot spot, glossy reflection) 0.942 or less.
MIN_EDGE_CONFIDENCE = 0.96
#: The perturbed re-run works at this share of ``work_pixels`` (a different sampling grid).
STABILITY_PIXELS_SHARE = 0.45
#: A bright region with sharp pixels along less than this share of its perimeter is a light's
#: hot spot on the backdrop (set on the synthetic ``studio`` set's hot spots).
GLOW_MAX_SHARP_SHARE = 0.1
#: Above this :func:`_edge_uncertainty` (the IoU an outline could lose if its true edge lay
#: anywhere in the matte's soft ramp) the cutout is noted ``soft-edges``: a mask whose edge
#: position alone may cost 5 % IoU cannot be promised at 0.95.
MAX_EDGE_UNCERTAINTY = 0.05
#: A cast shadow inside the mask is dropped only where at least this share of its area (holes
#: closed) is shadow or backdrop.
CAST_SHADOW_MIN_SOLIDITY = 0.95
#: Product and backdrop colours for the boundary's matte are sampled this many working pixels
#: inside and outside the mask's edge.
COLOUR_SAMPLE_INSET = 2
#: How much the product's local colour spread (over the product/backdrop contrast) lowers the
#: matte's reliance on the per-pixel solution (the lock's certification uses 2.5).
MATTE_SPREAD_WEIGHT = 1.0
#: A region inside the mask made of backdrop and shadow-of-backdrop pixels is opened as a gap
#: when at least this share of it is plain backdrop.
GAP_MIN_BACKDROP_SHARE = 0.5
_K3 = np.ones((3, 3), np.uint8)


@dataclass(frozen=True, eq=False)
class BackgroundModel:
    """A smooth background: per-channel quadratic surface over normalized frame coordinates,
    or two of them meeting at a straight horizon (a wall behind a table top).

    ``coeffs`` is ``(6, 3)`` for the basis ``1, x, y, x^2, xy, y^2`` with ``x, y`` in
    ``[0, 1]`` (pixel centres); ``noise`` is the per-channel residual sigma in levels;
    ``inlier_fraction`` the share of border pixels the surface explains. With a horizon,
    ``coeffs`` is the surface above it and ``lower`` the one below; ``horizon`` is the line's
    height ``(y at x = 0, y at x = 1)`` and ``horizon_width`` the height of its soft
    transition, both as fractions of the frame's height.
    """

    coeffs: np.ndarray
    noise: np.ndarray
    inlier_fraction: float
    lower: np.ndarray | None = None
    horizon: tuple[float, float] | None = None
    horizon_width: float = 0.0

    def evaluate(
        self, *, width: int, height: int, box: tuple[int, int, int, int] | None = None
    ) -> np.ndarray:
        """The modelled background over ``box`` (``x0, y0, x1, y1``) of a ``width x height``
        frame, as ``float32 (h, w, 3)``."""
        x0, y0, x1, y1 = box if box is not None else (0, 0, width, height)
        x = ((np.arange(x0, x1, dtype=np.float32) + 0.5) / width)[None, :]
        y = ((np.arange(y0, y1, dtype=np.float32) + 0.5) / height)[:, None]
        out = _surface(self.coeffs, x, y)
        if self.lower is not None and self.horizon is not None:
            line = self.horizon[0] + (self.horizon[1] - self.horizon[0]) * x
            # A linear ramp across the soft transition, never narrower than one pixel.
            ramp = max(self.horizon_width, 1.0 / height)
            t = np.clip((y - line) / ramp + 0.5, 0.0, 1.0)[:, :, None]
            out = out * (1.0 - t) + _surface(self.lower, x, y) * t
        return out


def _sq_norm(a: np.ndarray) -> np.ndarray:
    """Per-pixel squared length of an ``(H, W, 3)`` colour difference (einsum: far faster than
    a reduction over the last axis)."""
    return np.einsum("ijc,ijc->ij", a, a)


def _channel_mean(a: np.ndarray) -> np.ndarray:
    return (a[:, :, 0] + a[:, :, 1] + a[:, :, 2]) * np.float32(1.0 / 3.0)


def _surface(coeffs: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty((y.shape[0], x.shape[1], 3), np.float32)
    for c in range(3):
        k = coeffs[:, c].astype(np.float32)
        out[:, :, c] = k[0] + k[1] * x + k[2] * y + k[3] * x * x + k[4] * x * y + k[5] * y * y
    return out


def _basis(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(xs), xs, ys, xs * xs, xs * ys, ys * ys], axis=1)


def _robust_fit(basis: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Iteratively reweighted least squares: ``(coeffs, inlier mask)``. Pixels far from the
    current fit (the product touching the border, dust) are dropped before refitting."""
    inliers = np.ones(len(vals), bool)
    coeffs = np.zeros((6, 3))
    for _ in range(4):
        coeffs, *_ = np.linalg.lstsq(basis[inliers], vals[inliers], rcond=None)
        residual = np.abs(vals - basis @ coeffs).max(axis=1)
        sigma = 1.4826 * np.median(residual[inliers])
        inliers = residual < max(4.0 * sigma, 6.0)
        if inliers.sum() < 6:
            inliers = np.ones(len(vals), bool)
            break
    return coeffs, inliers


#: A horizon is a step of at least this many levels (colour distance) in both side strips.
HORIZON_MIN_STEP = 12.0
#: ...and at least this many times the strips' own noise.
HORIZON_MIN_STEP_SIGMAS = 6.0


def _side_step(profile: np.ndarray, window: int) -> tuple[int, float, np.ndarray, np.ndarray]:
    """The strongest step down a side strip's row profile (``(h, 3)``): its row, its size and
    the colours just above and below it (medians over ``window`` rows each side)."""
    h = len(profile)
    lo, hi = max(window, int(0.08 * h)), min(h - window, int(0.97 * h))
    if hi <= lo:
        return (0, 0.0, profile[0], profile[0])
    # medians[i] is the median of rows i .. i + window - 1.
    medians = np.median(np.lib.stride_tricks.sliding_window_view(profile, window, axis=0), axis=2)
    rows = np.arange(lo, hi)
    sizes = np.linalg.norm(medians[rows - window] - medians[rows], axis=1)
    i = int(np.argmax(sizes))
    if sizes[i] <= 0.0:
        return (0, 0.0, profile[0], profile[0])
    row = int(rows[i])
    return (row, float(sizes[i]), medians[row - window], medians[row])


def _blend_at_horizon(img: np.ndarray, bg: np.ndarray, model: BackgroundModel) -> np.ndarray:
    """``bg`` with the horizon's transition taken from the photo: near the line each pixel's
    background is the blend of the two surfaces that matches it best.

    The fitted line and ramp are only as exact as the border strips they were measured on; a
    pixel off between a wall and a table top would otherwise read as a thin line of product
    across the frame. Pixels that no blend explains (a product crossing the line) keep the
    modelled ramp.
    """
    if model.horizon is None or model.lower is None:
        return bg
    h, w = bg.shape[:2]
    x = ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]
    y = ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None]
    line = model.horizon[0] + (model.horizon[1] - model.horizon[0]) * x
    near = np.abs(y - line) <= 2.0 * model.horizon_width + 3.0 / h
    rows = np.nonzero(near.any(axis=1))[0]
    if not len(rows):
        return bg
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    upper = _surface(model.coeffs, x, y[r0:r1])
    lower = _surface(model.lower, x, y[r0:r1])
    d = upper - lower
    t = np.einsum("ijc,ijc->ij", img[r0:r1] - lower, d) / np.maximum(_sq_norm(d), 1.0)
    blend = lower + np.clip(t, 0.0, 1.0)[:, :, None] * d
    sigma = np.maximum(model.noise, 1.5)
    closer = (np.abs((img[r0:r1] - blend) / sigma).max(axis=2) < 4.0) & near[r0:r1]
    out = bg.copy()
    out[r0:r1][closer] = blend[closer]
    return out


def _find_horizon(
    image: np.ndarray, b: int
) -> tuple[tuple[float, float], float] | None:
    """A straight horizon across the frame, seen as the same step in the left and the right
    border strips: ``((y at x = 0, y at x = 1), transition height)`` as fractions of the
    frame's height, or ``None``.

    A product that crosses one side makes a step on that side only; one crossing both sides at
    the same height with the same colours above and below on both sides would be taken for a
    horizon (its strip then fits neither surface and is rejected as outliers).
    """
    h, w = image.shape[:2]
    if h < 24 or w < 2 * b + 4:
        return None
    window = max(3, h // 25)
    sides = []
    for strip in (image[:, :b], image[:, w - b :]):
        profile = np.median(strip.astype(np.float32), axis=1)
        noise = float(np.median(np.abs(np.diff(profile, axis=0)))) * 1.4826 + 0.5
        row, size, above, below = _side_step(profile, window)
        if size < max(HORIZON_MIN_STEP, HORIZON_MIN_STEP_SIGMAS * noise):
            return None
        # The transition: rows between the two plateaus, counted within two windows.
        seg = profile[max(0, row - 2 * window) : row + 2 * window]
        direction = (below - above) / size
        t = (seg - above) @ direction / size
        ramp_rows = int(((t > 0.15) & (t < 0.85)).sum())
        sides.append((row, size, above, below, ramp_rows))
    (row_l, size_l, above_l, below_l, ramp_l), (row_r, size_r, above_r, below_r, ramp_r) = sides
    step = min(size_l, size_r)
    same_colours = (
        np.linalg.norm(above_l - above_r) < 0.5 * step and np.linalg.norm(below_l - below_r) < 0.5 * step
    )
    if not same_colours or abs(row_l - row_r) > 0.25 * h:
        return None
    return ((row_l / h, row_r / h), max(ramp_l, ramp_r, 1) / h)


def fit_background(image: np.ndarray, *, border_fraction: float = 0.03) -> BackgroundModel:
    """Fit a :class:`BackgroundModel` to the border strip of ``image`` (``uint8 (H, W, 3)``).

    Iteratively reweighted (:func:`_robust_fit`), so a product that crosses one edge does not
    bend the surface. Where both side strips step at the same height (:func:`_find_horizon`)
    the strip is split at that line and a surface is fitted on each side of it.
    """
    h, w = image.shape[:2]
    b = max(2, int(round(border_fraction * min(h, w))))
    strip = np.zeros((h, w), bool)
    strip[:b] = strip[-b:] = True
    strip[:, :b] = strip[:, -b:] = True
    ys, xs = np.nonzero(strip)
    vals = image[ys, xs].astype(np.float64)
    fx, fy = (xs + 0.5) / w, (ys + 0.5) / h
    basis = _basis(fx, fy)
    found = _find_horizon(image, b)
    if found is not None:
        (left, right), ramp = found
        offset = fy - (left + (right - left) * fx)
        margin = max(ramp, 2.0 / h)
        upper_px, lower_px = offset < -margin, offset > margin
        if upper_px.sum() >= 24 and lower_px.sum() >= 24:
            upper, in_upper = _robust_fit(basis[upper_px], vals[upper_px])
            lower, in_lower = _robust_fit(basis[lower_px], vals[lower_px])
            res = np.concatenate([
                vals[upper_px][in_upper] - basis[upper_px][in_upper] @ upper,
                vals[lower_px][in_lower] - basis[lower_px][in_lower] @ lower,
            ])
            noise = np.maximum(1.4826 * np.median(np.abs(res), axis=0), 0.5)
            inlier_fraction = (in_upper.sum() + in_lower.sum()) / max(upper_px.sum() + lower_px.sum(), 1)
            return BackgroundModel(
                coeffs=upper, noise=noise.astype(np.float32), inlier_fraction=float(inlier_fraction),
                lower=lower, horizon=(float(left), float(right)), horizon_width=float(ramp),
            )
    coeffs, inliers = _robust_fit(basis, vals)
    res = vals[inliers] - basis[inliers] @ coeffs
    noise = np.maximum(1.4826 * np.median(np.abs(res), axis=0), 0.5)
    return BackgroundModel(
        coeffs=coeffs, noise=noise.astype(np.float32), inlier_fraction=float(inliers.mean())
    )


@dataclass(frozen=True)
class _Evidence:
    bg_like: np.ndarray
    bg_exact: np.ndarray
    lit_exact: np.ndarray
    shadow_like: np.ndarray
    gain: np.ndarray
    strong: np.ndarray
    sharp: np.ndarray
    core: np.ndarray
    barrier: np.ndarray


class GraphCutSegmenter:
    """Cut a product out of a studio-style photo without any model weights.

    Args:
        work_pixels: pixel budget of the working resolution (steps 1-5 in the module doc).
        grabcut_iterations: iterations of ``cv2.grabCut``; 0 skips the graph cut.
    """

    name = "graphcut"
    version = VERSION

    def __init__(
        self, *, work_pixels: int = 160_000, grabcut_iterations: int = 2, check_stability: bool = True
    ) -> None:
        self.work_pixels = work_pixels
        self.grabcut_iterations = grabcut_iterations
        self.check_stability = check_stability

    # -- public ----------------------------------------------------------------------------
    def segment(self, image: Image.Image | np.ndarray) -> SegmentationResult:
        """Segment ``image`` (PIL image or ``uint8 (H, W, 3)``); see the module docstring."""
        full = as_rgb_array(image)
        small, factor, model, small_f, bg_small, evidence, mask_small, leak_ratio, reflection = (
            self._working_mask(full, self.work_pixels, 0.03)
        )

        notes: list[str] = []
        # A border the smooth model cannot explain (a scene, clutter, heavy texture) is not a
        # studio backdrop: either many outliers or a large residual noise level.
        if model.inlier_fraction < 0.6 or float(model.noise.max()) > 12.0:
            notes.append("busy-background")
        if leak_ratio > 0.1:
            notes.append("open-outline")
        if reflection:
            notes.append("reflection-removed")
        if not mask_small.any():
            alpha = np.zeros(full.shape[:2], np.float32)
            return result_from_alpha(
                image=full, alpha=alpha, foreground=full, edge_confidence=0.0,
                backend=self.name, version=self.version, notes=tuple(notes),
            )
        # With an open outline the edge-snapped mask may follow the shadow, not the product:
        # certify boundary pixels only where the colour solution itself is trusted.
        alpha, foreground, lockable, edge_conf = self._refine_full(
            full, small_f, bg_small, mask_small, evidence, model, factor,
            strict_lock=leak_ratio > 0.1,
        )
        ring = np.concatenate(
            [mask_small[0], mask_small[-1], mask_small[:, 0], mask_small[:, -1]]
        )
        if ring.mean() > 0.25:
            notes.append("touches-border")
        notes.extend(_shape_doubts(mask_small))
        if _sides_touched(mask_small) >= 2:
            notes.append("leaves-frame")
        # Stability: the same cut from a coarser working resolution and a wider border strip
        # for the background model. A mask that is right follows the image's evidence and
        # comes out the same; one resting on a guess (a horizon, a hot spot, a leak through
        # a faint outline) moves. Two masks both within ~0.965 IoU of the truth agree to at
        # least ~0.93, so less agreement means at least one of them is off (see STABLE_IOU).
        if self.check_stability and _mask_iou(mask_small, self._perturbed_mask(full)) < STABLE_IOU:
            notes.append("unstable")
        if _edge_uncertainty(alpha) > MAX_EDGE_UNCERTAINTY:
            notes.append("soft-edges")
        coverage = float(mask_small.mean())
        if coverage < 0.002:
            notes.append("tiny")
        if coverage > 0.9:
            notes.append("fills-frame")
        return result_from_alpha(
            image=full, alpha=alpha, foreground=foreground, edge_confidence=edge_conf,
            backend=self.name, version=self.version, notes=tuple(notes), lockable=lockable,
            min_edge_confidence=MIN_EDGE_CONFIDENCE,
        )

    # -- steps -----------------------------------------------------------------------------
    def _working_mask(self, full: np.ndarray, work_pixels: int, border_fraction: float):
        """Steps 1-5 of the module doc at ``work_pixels``: the working-resolution mask and
        what was computed on the way."""
        small, factor = downscale_to_pixels(full, work_pixels)
        model = fit_background(small, border_fraction=border_fraction)
        small_f = small.astype(np.float32)
        bg_small = _blend_at_horizon(small_f, model.evaluate(width=small.shape[1], height=small.shape[0]), model)
        evidence = self._evidence(small_f, bg_small, model)
        seeds, leak_ratio = self._seeds(evidence)
        mask_small = self._graph_cut(small, seeds)
        mask_small = self._clean(mask_small, evidence)
        cut, reflection = _drop_reflection(mask_small, small_f, bg_small, float(model.noise.mean()))
        if reflection:
            # The reflection was product evidence for the seeds (it can even make the outline
            # look open and fill the hull of product and mirror image): cut again with it as
            # backdrop.
            mirror = cv2.dilate((mask_small & ~cut).astype(np.uint8), _K3).astype(bool)
            evidence = replace(
                evidence,
                bg_like=evidence.bg_like | mirror, bg_exact=evidence.bg_exact | mirror,
                strong=evidence.strong & ~mirror, sharp=evidence.sharp & ~mirror,
                core=evidence.core & ~mirror, barrier=evidence.barrier & ~mirror,
            )
            seeds, leak_ratio = self._seeds(evidence)
            mask_small = self._clean(self._graph_cut(small, seeds), evidence) & ~mirror
        else:
            mask_small = cut
        return small, factor, model, small_f, bg_small, evidence, mask_small, leak_ratio, reflection

    def _perturbed_mask(self, full: np.ndarray) -> np.ndarray:
        """The working mask again, from :data:`STABILITY_PIXELS_SHARE` of the pixels and a
        background strip of 5 % instead of 3 % of the short side."""
        pixels = max(4096, int(self.work_pixels * STABILITY_PIXELS_SHARE))
        return self._working_mask(full, pixels, 0.05)[6]

    @staticmethod
    def _evidence(img: np.ndarray, bg: np.ndarray, model: BackgroundModel) -> _Evidence:
        sigma = np.maximum(model.noise, 1.5)
        diff = (img - bg) / sigma
        dist = np.sqrt(_sq_norm(diff) / 3.0)
        k = np.einsum("ijc,ijc->ij", img, bg) / np.maximum(np.einsum("ijc,ijc->ij", bg, bg), 1.0)
        cres = (img - k[:, :, None] * bg) / sigma
        cdist = np.sqrt(_sq_norm(cres) / 3.0)

        bg_like = dist < 4.0
        neutral = cdist < 4.0
        shadow_like = ~bg_like & neutral & (k >= 0.25) & (k < 1.0)
        strong = (cdist >= 10.0) | ((dist >= 10.0) & ((k >= 1.0) | (k < 0.25)))

        # Sharp edges: gradient large relative to the local contrast. A cast shadow's edge is
        # soft (small ratio); a product outline, even white on white, is sharp.
        grey = cv2.GaussianBlur(_channel_mean(img), (0, 0), 0.7)
        gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8.0
        gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8.0
        mag = np.sqrt(gx * gx + gy * gy)
        k7 = np.ones((7, 7), np.uint8)
        local_range = cv2.dilate(grey, k7) - cv2.erode(grey, k7)
        min_contrast = max(5.0, 4.0 * float(model.noise.mean()))
        # A step blurred by sigma has a peak slope of ~0.4 C / sigma over a 7 px range of ~C:
        # ratio ~0.45 for a sharp outline, <= 0.2 for a shadow edge softer than 3 px.
        sharp = (mag > 0.3 * local_range) & (local_range > min_contrast)
        # A light's hot spot: backdrop lit brighter (of its own hue, or every channel raised
        # towards white), fading out smoothly on every side. A product brighter than its backdrop has an outline.
        lit = (k >= 1.0) & ((cdist < 8.0) | (np.min(img - bg, axis=2) > -2.0 * float(sigma.max())))
        glow = GraphCutSegmenter._glow(~bg_like & ~shadow_like & lit, sharp, bg_like | shadow_like)
        bg_like |= glow
        strong &= ~glow
        # Pixels that are product by colour alone, undilated: the only ones graph cut may not
        # move (after an erosion). Everything below is dilated and only finds enclosures.
        core = strong | ~(bg_like | shadow_like)
        # Close one-pixel gaps (JPEG blocks, a low-contrast stretch) in the outline.
        sharp = cv2.dilate(sharp.astype(np.uint8), _K3).astype(bool)
        # Texture: a dense field of sharp edges is a printed or rough surface, never a shadow,
        # even where the outline itself is lost against a contact shadow of the same tone.
        density = cv2.boxFilter(sharp.astype(np.float32), -1, (9, 9))
        barrier = strong | sharp | (density > 0.2) | ~(bg_like | shadow_like)
        # Seal gaps of a few pixels so the flood from the border cannot leak inside.
        k5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        barrier = cv2.morphologyEx(barrier.astype(np.uint8), cv2.MORPH_CLOSE, k5).astype(bool)
        # Statistically indistinguishable from the background: what a hole shows. A white
        # product is lit a little darker than its sweep, so it is bg_like but not bg_exact.
        bg_exact = dist < 2.5
        # The backdrop a little more lit than the fitted surface (a light falling off faster
        # than a quadratic), of its hue: what a gap near a hot spot shows.
        lit_exact = (cdist < 2.5) & (k >= 1.0) & (k < 1.15)
        return _Evidence(
            bg_like=bg_like, bg_exact=bg_exact, lit_exact=lit_exact, shadow_like=shadow_like,
            gain=k.astype(np.float32), strong=strong, sharp=sharp, core=core, barrier=barrier,
        )

    @staticmethod
    def _glow(bright: np.ndarray, sharp: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
        """The components of ``bright`` (pixels lighter than the backdrop, of its hue) that
        have next to no sharp edge where they meet ``backdrop`` (under
        :data:`GLOW_MAX_SHARP_SHARE` of that outline in sharp pixels): the hot spot of a light,
        not a product. Where a hot spot meets the product its outline is the product's, so
        only its outline against the backdrop counts."""
        n, labels = cv2.connectedComponents(bright.astype(np.uint8), connectivity=8)
        if n <= 1:
            return np.zeros_like(bright)
        near_backdrop = cv2.dilate(backdrop.astype(np.uint8), _K3).astype(bool)
        edge = bright & ~cv2.erode(bright.astype(np.uint8), _K3).astype(bool) & near_backdrop
        near_sharp = cv2.dilate(sharp.astype(np.uint8), _K3).astype(bool) & edge
        sharp_count = np.bincount(labels[near_sharp], minlength=n)
        perimeter = np.bincount(labels[edge], minlength=n)
        glow = sharp_count < GLOW_MAX_SHARP_SHARE * np.maximum(perimeter, 1)
        glow[0] = False
        return glow[labels]

    @staticmethod
    def _islands(
        region: np.ndarray, background: np.ndarray, share: float = 0.7
    ) -> tuple[np.ndarray, np.ndarray]:
        """Split ``region`` into (islands over ``share`` ``background``, the rest) by component."""
        n, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=4)
        if n <= 1:
            return np.zeros_like(region), region
        size = np.bincount(labels.ravel(), minlength=n)
        bg_count = np.bincount(labels.ravel(), weights=background.ravel(), minlength=n)
        is_island = bg_count > share * np.maximum(size, 1)
        is_island[0] = False
        islands = is_island[labels] & region
        return islands, region & ~islands

    @staticmethod
    def _outside(barrier: np.ndarray) -> np.ndarray:
        """Open space reachable from the frame border without crossing ``barrier``."""
        open_space = ~barrier
        n, labels = cv2.connectedComponents(open_space.astype(np.uint8), connectivity=4)
        edge_labels = np.unique(
            np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        )
        touches = np.zeros(n, bool)
        touches[edge_labels] = True
        touches[0] = False  # label 0 is the barrier itself
        return touches[labels] & open_space

    def _seeds(self, ev: _Evidence) -> tuple[np.ndarray, float]:
        """GrabCut seeds, and the share of probable product lost through open outlines."""
        h, w = ev.barrier.shape
        outside = self._outside(ev.barrier)
        islands, filled = self._islands(~ev.barrier & ~outside, ev.bg_exact)
        product = ev.barrier | filled

        # Isolated specks of evidence (dust, a paper seam fragment) are not the product.
        product = _large_components(product, _min_area(product), connectivity=8)

        # Where an outline fades out (a white box meeting a contact shadow of its own tone)
        # the flood leaks inside. Sealing gaps up to 8 % of the frame finds such interiors;
        # only pixels that are not plain background count (concavities of ordinary products
        # show plain background, so they stay out). Graph cut would hand such white interiors
        # to the white background's colour model, so their core is fixed as product; the
        # result is flagged, as the outline there is a guess.
        size = max(7, int(0.08 * min(h, w)) | 1)
        wide = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        sealed = cv2.morphologyEx(product.astype(np.uint8), cv2.MORPH_CLOSE, wide).astype(bool)
        leaked = ~sealed & ~self._outside(sealed) & ~ev.bg_exact & outside
        leak_ratio = float(leaked.sum()) / max(float(product.sum()), 1.0)
        if leak_ratio > 0.1:
            # The outline is known to be open, and a gap wider than the seal can remain (a
            # long bottom edge on a shadow of the same tone): take each evidence component's
            # convex hull as its interior instead, still without plain-background pixels.
            hull = np.zeros((h, w), np.uint8)
            contours, _ = cv2.findContours(
                product.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
            )
            for contour in contours:
                cv2.fillConvexPoly(hull, cv2.convexHull(contour), 1)
            leaked |= hull.astype(bool) & ~ev.bg_exact & outside

        seeds = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        dist_to_product = cv2.distanceTransform(
            (~(product | leaked)).astype(np.uint8), cv2.DIST_L2, 3
        )
        seeds[outside & (dist_to_product > 3.0)] = cv2.GC_BGD
        seeds[product | leaked] = cv2.GC_PR_FGD
        # Enclosed interiors are found with a dilated barrier, so they stop a pixel or two
        # short of the true edge on the inside; colour evidence is not dilated.
        sure_src = (((ev.core | filled) & product) | leaked).astype(np.uint8)
        sure = cv2.erode(sure_src, _K3, iterations=2).astype(bool)
        # Texture and edge evidence is dilated (the density window reaches 4 px out), so it
        # is sure only well inside: faint print on a white product must not be handed to the
        # white backdrop's colour model by graph cut.
        sure |= cv2.erode((product | leaked).astype(np.uint8), _K3, iterations=5).astype(bool) & ~ev.bg_exact
        seeds[sure] = cv2.GC_FGD
        return seeds, leak_ratio

    def _graph_cut(self, small: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        fg = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
        if not fg.any():
            return fg
        if self.grabcut_iterations <= 0:
            return fg
        h, w = seeds.shape
        ys, xs = np.nonzero(seeds != cv2.GC_BGD)
        pad = 8
        x0, y0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
        x1, y1 = min(w, xs.max() + pad + 1), min(h, ys.max() + pad + 1)
        crop = seeds[y0:y1, x0:x1].copy()
        has_bg = np.any((crop == cv2.GC_BGD) | (crop == cv2.GC_PR_BGD))
        if not has_bg:
            return fg
        bgd_model = np.zeros((1, 65), np.float64)
        fgd_model = np.zeros((1, 65), np.float64)
        # grabCut seeds its colour models with k-means from OpenCV's thread RNG, whose state
        # every earlier call advanced: without a fixed seed the same photo gave a different
        # mask each time (and a different stability verdict).
        cv2.setRNGSeed(GRABCUT_SEED)
        try:
            cv2.grabCut(
                np.ascontiguousarray(small[y0:y1, x0:x1]), crop, None, bgd_model, fgd_model,
                self.grabcut_iterations, cv2.GC_INIT_WITH_MASK,
            )
        except cv2.error:
            # grabCut refuses seeds with a single colour class (e.g. a flat synthetic
            # product); the seeds themselves are then the answer.
            return fg
        out = np.zeros((h, w), bool)
        out[y0:y1, x0:x1] = (crop == cv2.GC_FGD) | (crop == cv2.GC_PR_FGD)
        return out

    def _clean(self, mask: np.ndarray, ev: _Evidence) -> np.ndarray:
        # Fill holes that are not background-coloured islands (a handle's hole stays open).
        inv = ~mask
        n, labels = cv2.connectedComponents(inv.astype(np.uint8), connectivity=4)
        edge_labels = np.unique(
            np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        )
        open_label = np.zeros(n, bool)
        open_label[edge_labels] = True
        holes = inv & ~open_label[labels]
        _, fill = self._islands(holes, ev.bg_exact)
        mask = mask | fill
        # Background showing through gaps the graph cut closed (between legs, spokes, wings):
        # regions of the mask that are the backdrop, then those that are backdrop with a
        # shadow across less than half of them (a white product lit darker than its sweep
        # reads as shadow, but has no plain-backdrop half).
        min_area = _min_area(mask)
        backdrop = ev.bg_exact | ev.lit_exact
        mask = mask & ~_large_components(mask & backdrop & ~ev.sharp, min_area)
        gaps, _ = self._islands(mask & (backdrop | ev.shadow_like), backdrop, share=GAP_MIN_BACKDROP_SHARE)
        mask = mask & ~_large_components(gaps, min_area)
        mask = self._drop_cast_shadow(mask, ev)
        return _large_components(mask, min_area, connectivity=8)

    @staticmethod
    def _drop_cast_shadow(mask: np.ndarray, ev: _Evidence) -> np.ndarray:
        """``mask`` without a cast shadow seen through a gap (between legs, inside a wheel):
        shadow that continues outside the mask with no sharp edge between and lies mostly
        outside it. The part inside must be solid shadow (a pale print whose speckles read as
        shadow next to the product's own contact shadow is not) and within the darkness range
        of the part outside (a grey product meeting its contact shadow is a different grey)."""
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            (ev.shadow_like & ~ev.sharp).astype(np.uint8), connectivity=4
        )
        if n <= 1:
            return mask
        size = stats[:, cv2.CC_STAT_AREA]
        inside = np.bincount(labels[mask], minlength=n)
        candidates = np.nonzero((inside >= _min_area(mask)) & (inside < 0.5 * size))[0]
        k5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        out = mask.copy()
        for label in candidates[candidates > 0]:
            x, y, bw, bh = stats[label, :4]
            box = (slice(max(0, y - 3), y + bh + 3), slice(max(0, x - 3), x + bw + 3))
            member, in_mask = labels[box] == label, mask[box]
            part = member & in_mask
            solid = cv2.morphologyEx(part.astype(np.uint8), cv2.MORPH_CLOSE, k5).astype(bool)
            shade = (ev.shadow_like | ev.bg_like)[box][solid]
            gain = ev.gain[box]
            lo, hi = np.percentile(gain[member & ~in_mask], [5.0, 95.0])
            same_shade = lo - 0.02 <= float(np.median(gain[part])) <= hi + 0.02
            if same_shade and float(shade.mean()) >= CAST_SHADOW_MIN_SOLIDITY:
                out[box] &= ~part
        return out

    def _refine_full(
        self,
        full: np.ndarray,
        small_f: np.ndarray,
        bg_model_small: np.ndarray,
        mask_small: np.ndarray,
        ev: _Evidence,
        model: BackgroundModel,
        factor: float,
        *,
        strict_lock: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        hs, ws = mask_small.shape
        H, W = full.shape[:2]
        m8 = mask_small.astype(np.uint8)

        # Local colours at the working resolution: product colour from the interior, background
        # colour from nearby background (this includes a cast shadow, so the shadow does not
        # read as partial product), falling back to the global model where none is near.
        interior = cv2.erode(m8, _K3).astype(bool)
        # Colours are sampled past the edge's own ramp: a soft edge's partial pixels pulled the
        # product colour towards the backdrop, and every alpha of the ramp came out too high
        # (the outline drifted outwards by about a third of the blur on the synthetic sets).
        f_source = cv2.erode(m8, _K3, iterations=COLOUR_SAMPLE_INSET).astype(bool)
        b_source = cv2.erode(1 - m8, _K3, iterations=COLOUR_SAMPLE_INSET).astype(bool)
        f_local, f_support = normalized_blur(small_f, f_source, 2.5)
        b_local, b_support = normalized_blur(small_f, b_source, 2.5)
        tb = np.clip(b_support / 0.2, 0.0, 1.0)[:, :, None]
        b_small = tb * b_local + (1.0 - tb) * bg_model_small
        noise = float(model.noise.mean())
        c0 = max(8.0, 4.0 * noise)
        contrast_small = np.sqrt(_sq_norm(f_local - b_small))
        trust_small = np.clip((contrast_small - c0) / (c0 + 8.0), 0.0, 1.0) * np.clip(
            f_support / 0.2, 0.0, 1.0
        )
        # The per-pixel solution assumes the product colour behind an edge pixel is the local
        # mean; on a busy print the true colour can sit anywhere in the local spread, so the
        # solution is trusted only where that spread is small against the product/background
        # contrast (otherwise a half-covered pixel can come out fully opaque and get locked).
        f_sq, _ = normalized_blur(small_f * small_f, f_source, 2.5)
        f_spread = np.sqrt(np.maximum(f_sq - f_local * f_local, 0.0).sum(axis=2))
        spread = f_spread / np.maximum(contrast_small, 1.0)
        support_trust = np.clip(f_support / 0.2, 0.0, 1.0)
        alpha_trust = support_trust * np.clip(1.0 - 2.5 * spread, 0.0, 1.0)
        # The matte itself leans on the solution more than the lock does: the alternative, the
        # working mask snapped to the photo's edges, sits where the coarse cut put the edge,
        # outside the middle of a soft edge (the outline drifted outwards on blurred edges).
        matte_trust = support_trust * np.clip(1.0 - MATTE_SPREAD_WEIGHT * spread, 0.0, 1.0)

        boundary = m8.astype(bool) & ~interior
        sharp_near = cv2.dilate(ev.sharp.astype(np.uint8), _K3).astype(bool)
        support = np.maximum(trust_small, sharp_near.astype(np.float32))
        edge_conf = float(support[boundary].mean()) if boundary.any() else 0.0

        band_small = cv2.dilate(m8, _K3, iterations=2) & ~cv2.erode(m8, _K3, iterations=2).astype(bool)
        band_small = band_small.astype(np.uint8)

        if factor == 1.0:
            coarse = mask_small
        else:
            coarse = cv2.resize(m8 * 255, (W, H), interpolation=cv2.INTER_LINEAR) >= 128
        alpha = coarse.astype(np.float32)
        foreground = full.copy()
        lockable = np.ones((H, W), bool)

        # cv2.remap takes at most 4 channels, contiguous: the 9 fields in groups of 4, 4, 1.
        groups = [
            np.ascontiguousarray(np.dstack([f_local, m8]).astype(np.float32)),
            np.ascontiguousarray(np.dstack([b_small, band_small]).astype(np.float32)),
            np.ascontiguousarray(np.dstack([alpha_trust, matte_trust]).astype(np.float32)),
        ]
        radius = max(2, int(round(0.75 / factor)))
        for ty in range(0, H, _TILE):
            for tx in range(0, W, _TILE):
                # Which working-resolution pixels does this tile cover (plus one of margin)?
                sx0 = max(0, int(tx * factor) - 1)
                sy0 = max(0, int(ty * factor) - 1)
                sx1 = min(ws, int((tx + _TILE) * factor) + 2)
                sy1 = min(hs, int((ty + _TILE) * factor) + 2)
                if not band_small[sy0:sy1, sx0:sx1].any():
                    continue
                x0, y0 = max(0, tx - radius), max(0, ty - radius)
                x1, y1 = min(W, tx + _TILE + radius), min(H, ty + _TILE + radius)
                a_t, f_t, band_t, lock_t = self._refine_tile(
                    full[y0:y1, x0:x1], groups, (x0, y0), factor, radius, noise, c0, strict_lock
                )
                # Write back the tile proper (the radius margin only fed the filters).
                ix0, iy0 = tx - x0, ty - y0
                ix1 = ix0 + min(_TILE, W - tx)
                iy1 = iy0 + min(_TILE, H - ty)
                sl = (slice(iy0, iy1), slice(ix0, ix1))
                band = band_t[sl]
                alpha_tile = alpha[ty:ty + iy1 - iy0, tx:tx + ix1 - ix0]
                fg_tile = foreground[ty:ty + iy1 - iy0, tx:tx + ix1 - ix0]
                alpha_tile[band] = a_t[sl][band]
                fg_tile[band] = f_t[sl][band]
                lockable[ty:ty + iy1 - iy0, tx:tx + ix1 - ix0][band] = lock_t[sl][band]
        return alpha, foreground, lockable, edge_conf

    @staticmethod
    def _refine_tile(
        tile: np.ndarray,
        groups: list[np.ndarray],
        origin: tuple[int, int],
        factor: float,
        radius: int,
        noise: float,
        c0: float,
        strict_lock: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        th, tw = tile.shape[:2]
        x0, y0 = origin
        # Bilinear lookup of the working-resolution fields at full-resolution pixel centres.
        map_x = ((np.arange(x0, x0 + tw, dtype=np.float32) + 0.5) * factor - 0.5)[None, :]
        map_y = ((np.arange(y0, y0 + th, dtype=np.float32) + 0.5) * factor - 0.5)[:, None]
        map_x = np.broadcast_to(map_x, (th, tw)).astype(np.float32)
        map_y = np.broadcast_to(map_y, (th, tw)).astype(np.float32)
        chans = [
            cv2.remap(g, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for g in groups
        ]
        f_t, coarse = chans[0][:, :, 0:3], chans[0][:, :, 3]
        b_t, band_t = chans[1][:, :, 0:3], chans[1][:, :, 3] > 0.01
        trust, matte_trust = chans[2][:, :, 0], chans[2][:, :, 1]

        img = tile.astype(np.float32)
        grey = _channel_mean(img) / 255.0
        a_gf = guided_filter(grey, coarse, radius, 1e-4)
        a_gf = snap_alpha(a_gf, 0.25, 0.75)

        # The per-pixel solution only where it is written back: the boundary band's pixels,
        # as an (N, 1, 3) column (the matting helpers work on any (H, W, 3)).
        band_img, band_f, band_b = img[band_t][:, None], f_t[band_t][:, None], b_t[band_t][:, None]
        a_kb, contrast = known_background_alpha(band_img, band_f, band_b)
        low = np.clip(3.0 * noise / np.maximum(contrast, 1.0), 0.03, 0.3)
        a_kb = np.clip((a_kb - low) / (1.0 - 2.0 * low), 0.0, 1.0)
        contrast_trust = np.clip((contrast - c0) / (c0 + 8.0), 0.0, 1.0)
        pixel_trust = contrast_trust * trust[band_t][:, None]
        blend = contrast_trust * matte_trust[band_t][:, None]
        a_band = blend * a_kb + (1.0 - blend) * a_gf[band_t][:, None]
        f_band = decontaminate(band_img, a_band, band_b, band_f)

        a_t = np.zeros((th, tw), np.float32)
        a_t[band_t] = a_band[:, 0]
        f_out = tile.copy()
        f_out[band_t] = np.clip(np.rint(f_band[:, 0]), 0, 255).astype(np.uint8)
        # A boundary pixel may be locked only where the colour solution is trusted, or well
        # inside the edge-snapped mask: that mask comes from the working resolution and can
        # sit a few pixels off on a busy print (where the colour solution is not trusted
        # either, as the local product colour is uncertain). Such pixels are still drawn with
        # their alpha, so the output is the same; they are just not certified as product.
        margin = int(np.ceil(0.5 / factor)) + 1
        solid_gf = cv2.erode(
            (a_gf >= 0.98).astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
        ).astype(bool)
        lock_t = solid_gf & (not strict_lock)
        lock_t[band_t] |= pixel_trust[:, 0] >= 0.9
        return a_t, f_out, band_t, lock_t


#: A glossy floor's reflection is the product mirrored about its base and faded: a pixel below
#: the base is explained by it when it lies between the backdrop and its mirror pixel, at most
#: this share of the way to the mirror pixel (a product's own lower half would match at ~1).
REFLECTION_MAX_OPACITY = 0.6
#: ... and a reflection is taken out only when it explains this share of the mask below the base.
REFLECTION_MIN_SHARE = 0.6


def _reflection_fit(
    mask: np.ndarray, img: np.ndarray, bg: np.ndarray, noise: float, axis: int
) -> tuple[np.ndarray, int, int]:
    """For a mirror line under row ``axis`` (row ``axis + 1 + d`` mirrors row ``axis - d``):
    the mask pixels below it that a faded mirror image explains, as a ``bool`` array over
    rows ``axis + 1 ..``, and the counts explained / not explained."""
    below = mask[axis + 1 :]
    rows = np.nonzero(below.any(axis=1))[0]
    depth = min(int(rows[-1]) + 1 if len(rows) else 0, axis + 1)
    explained = np.zeros_like(below)
    if depth <= 0 or not below.any():
        return explained, 0, int(below.sum())
    lower = slice(axis + 1, axis + 1 + depth)
    source = slice(axis, axis - depth if axis - depth >= 0 else None, -1)
    u = img[lower] - bg[lower]
    v = img[source] - bg[lower]
    vv = _sq_norm(v)
    t = np.clip(np.einsum("ijc,ijc->ij", u, v) / np.maximum(vv, 1.0), 0.0, 1.0)
    residual = np.sqrt(_sq_norm(u - t[:, :, None] * v))
    # Slack for the blur and the JPEG of a real floor, growing with the reflection's strength.
    fits = residual < 4.0 * noise + 3.0 + 0.15 * t * np.sqrt(vv)
    faint = np.sqrt(_sq_norm(u)) < 4.0 * noise + 3.0
    explained[:depth] = below[:depth] & (faint | (fits & mask[source] & (t <= REFLECTION_MAX_OPACITY)))
    n_explained = int(explained.sum())
    return explained, n_explained, int(below.sum()) - n_explained


def _drop_reflection(
    mask: np.ndarray, img: np.ndarray, bg: np.ndarray, noise: float
) -> tuple[np.ndarray, bool]:
    """``mask`` without a glossy floor's reflection of the product, and whether one was found.

    The mirror line is searched between the upper third of the mask and its bottom; the line
    that explains the most of the mask under it (and leaves the least unexplained) wins, and
    its reflection is dropped when it explains :data:`REFLECTION_MIN_SHARE` of what is below.
    """
    rows = np.nonzero(mask.any(axis=1))[0]
    if len(rows) < 8:
        return mask, False
    cols = np.nonzero(mask.any(axis=0))[0]
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    full_mask = mask
    mask, img, bg = mask[:, x0:x1], img[:, x0:x1], bg[:, x0:x1]
    top, bottom = int(rows[0]), int(rows[-1])
    # A coarse search at half the resolution (every line there), then every line near the best.
    best, best_score = None, 0
    coarse = (mask[::2, ::2], img[::2, ::2], bg[::2, ::2])
    for axis in range((top + (bottom - top) // 3) // 2, (bottom - 1) // 2):
        _, good, bad = _reflection_fit(*coarse, noise, axis)
        if good - 2 * bad > best_score:
            best, best_score = 2 * axis, good - 2 * bad
    if best is not None:
        best_score = 0
        for axis in range(max(top, best - 2), min(bottom - 1, best + 4)):
            _, good, bad = _reflection_fit(mask, img, bg, noise, axis)
            if good - 2 * bad > best_score:
                best, best_score = axis, good - 2 * bad
    if best is None:
        return full_mask, False
    explained, good, bad = _reflection_fit(mask, img, bg, noise, best)
    area = int(mask.sum())
    if good < REFLECTION_MIN_SHARE * (good + bad) or good < 0.03 * area:
        return full_mask, False
    out = full_mask.copy()
    out[best + 1 :, x0:x1] &= ~explained
    # What is left under the line and no longer touches the product above it goes too.
    n, labels = cv2.connectedComponents(out.astype(np.uint8), connectivity=8)
    above = np.unique(labels[: best + 1][out[: best + 1]])
    keep = np.zeros(n, bool)
    keep[above] = True
    keep[0] = False
    return keep[labels], True


def _edge_uncertainty(alpha: np.ndarray) -> float:
    """The share of the mask's area its outline could move by if the true edge lay anywhere
    within the matte's ramp: ``(outline length x ramp width / 2) / area``.

    The ramp width is ``1 / median |grad alpha|`` over the matte's partial pixels (a linear
    ramp from 0 to 1 over ``w`` pixels has slope ``1 / w``). A compact product with crisp edges
    scores about 0.01; thin parts (legs, spokes, rigging) and a soft, wide edge raise it.
    """
    h, w = alpha.shape
    ys, xs = np.nonzero((alpha > 0.2) & (alpha < 0.8))
    inner = (ys > 0) & (ys < h - 1) & (xs > 0) & (xs < w - 1)
    ys, xs = ys[inner], xs[inner]
    solid = alpha >= 0.5
    area = int(np.count_nonzero(solid))
    if len(ys) < 16 or area == 0:
        return 0.0
    gx = (alpha[ys, xs + 1] - alpha[ys, xs - 1]) * 0.5
    gy = (alpha[ys + 1, xs] - alpha[ys - 1, xs]) * 0.5
    width = 1.0 / max(float(np.median(np.sqrt(gx * gx + gy * gy))), 1e-3)
    # Pixel sides crossed by the outline, times pi / 4: the mean of |cos| + |sin| over
    # directions is 4 / pi, so this is the outline's length for a curve at any angle.
    crossings = int(np.count_nonzero(solid[:, 1:] != solid[:, :-1])) + int(
        np.count_nonzero(solid[1:] != solid[:-1])
    )
    return 0.5 * (np.pi / 4.0) * crossings * width / area


def _min_area(mask: np.ndarray) -> int:
    """The least area of a region worth keeping or opening: 0.05 % of the frame, 9 pixels."""
    return max(9, int(0.0005 * mask.size))


def _large_components(region: np.ndarray, min_area: int, connectivity: int = 4) -> np.ndarray:
    """The connected components of ``region`` of at least ``min_area`` pixels."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=connectivity)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[labels]


def _shape_doubts(mask: np.ndarray) -> list[str]:
    """Notes for mask shapes a product shot rarely has but a backdrop mistaken for product does.

    A product stands on or in front of the backdrop, so a mask reaching the top edge is a wall
    or a light taken for product; a second sizeable region far from the main one is a hot spot,
    a reflection or a shadow; a mask spanning nearly the whole frame width is a horizon.
    """
    h, w = mask.shape
    doubts: list[str] = []
    if mask[: max(1, h // 100)].any(axis=0).mean() > 0.02:
        doubts.append("background-above")
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n > 2:
        areas = stats[1:, cv2.CC_STAT_AREA]
        order = np.argsort(areas)[::-1]
        main, second = order[0] + 1, order[1] + 1
        if areas[order[1]] > 0.02 * areas[order[0]]:
            gap = cv2.distanceTransform((labels != main).astype(np.uint8), cv2.DIST_L2, 3)
            if float(gap[labels == second].min()) > 0.03 * max(h, w):
                doubts.append("second-region")
    cols = mask.any(axis=0)
    if cols.mean() > 0.95:
        doubts.append("spans-frame")
    return doubts



def _sides_touched(mask: np.ndarray) -> int:
    """On how many sides of the frame the mask runs out over more than 2 % of that side.

    A product photographed whole stands inside the frame; a cropped one runs out on one side
    (usually the bottom). A mask leaving on two or more sides is most often the backdrop or
    the table taken for product, or a product too big for the frame to judge its outline.
    """
    sides = (mask[0], mask[-1], mask[:, 0], mask[:, -1])
    return sum(int(side.mean() > 0.02) for side in sides)


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two masks, ``b`` resized to ``a``'s shape first."""
    if b.shape != a.shape:
        b = cv2.resize(b.astype(np.uint8) * 255, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR) >= 128
    union = int(np.count_nonzero(a | b))
    return float(np.count_nonzero(a & b)) / union if union else 1.0
