"""``rembg:<model>`` backends: rembg ONNX sessions loaded from a local model folder.

Weights are never downloaded here. rembg downloads a model when its file is missing, so the
file is checked *before* rembg is imported (importing it also compiles pymatting's numba code,
tens of seconds, so it happens lazily, once per process) and a missing file raises
:class:`ModelNotInstalled` naming the file and the command that fetches it.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
from PIL import Image

from generation import models_store
from generation.imaging import as_rgb_array, bbox_of_mask
from generation.matting import decontaminate, normalized_blur
from generation.segmentation.base import (
    LOCK_ALPHA_THRESHOLD,
    ModelNotInstalled,
    SegmentationResult,
    result_from_alpha,
)

__all__ = ["RembgSegmenter"]

VERSION = "rembg-1.0"

_env_lock = threading.Lock()


@contextmanager
def _u2net_home(home: Path) -> Iterator[None]:
    # rembg reads U2NET_HOME when a session is built; set it only for that moment.
    with _env_lock:
        old = os.environ.get("U2NET_HOME")
        os.environ["U2NET_HOME"] = str(home)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("U2NET_HOME", None)
            else:
                os.environ["U2NET_HOME"] = old


@lru_cache(maxsize=4)
def _session(model: str, home: str) -> Any:
    """One rembg session per (model, folder) per process: loading is the slow part."""
    with _u2net_home(Path(home)):
        from rembg import new_session

        return new_session(model)


class RembgSegmenter:
    """Segment with a rembg model whose weights lie in ``model_dir`` (rembg's U2NET_HOME).

    Raises :class:`ModelNotInstalled` at construction when the weights file is missing.
    """

    def __init__(self, *, model: str, model_dir: str | os.PathLike[str] | None = None) -> None:
        spec = models_store.get_model(model)
        home = Path(model_dir).expanduser() if model_dir else models_store.default_model_home()
        if home is None:
            raise ModelNotInstalled(
                f"rembg model {model!r} needs a model folder: set U2NET_HOME (or pass "
                f"model_dir) and run `{spec.pull_command}`"
            )
        path = models_store.model_file(model, home)
        if path is None:
            raise ModelNotInstalled(
                f"rembg model {model!r} is not installed: missing file "
                f"{models_store.expected_path(model, home)}; run `{spec.pull_command}`"
            )
        self.model = model
        self.model_dir = home
        self.model_path = path
        self.name = f"rembg:{model}"
        self.version = f"{VERSION}+{model}"

    def segment(self, image: Image.Image | np.ndarray) -> SegmentationResult:
        """Segment ``image``; the model's matte is used as is, edges are decontaminated."""
        full = as_rgb_array(image)
        session = _session(self.model, str(self.model_dir.resolve()))
        matte = session.predict(Image.fromarray(full))[0]
        alpha = np.asarray(matte.convert("L"), np.float32) / 255.0
        foreground = _decontaminate_edges(full, alpha)
        # The same shape doubts as graphcut's: a model can take a wall, a light or a table
        # edge for the salient object too. (No model's confidence is measured here: no
        # weights ship with Vitrine.)
        from generation.segmentation.graphcut import _shape_doubts, _sides_touched

        hard = alpha >= 0.5
        notes = list(_shape_doubts(hard)) if hard.any() else []
        if hard.any() and _sides_touched(hard) >= 2:
            notes.append("leaves-frame")
        return result_from_alpha(
            image=full, alpha=alpha, foreground=foreground,
            edge_confidence=_edge_confidence(alpha), backend=self.name, version=self.version,
            notes=tuple(notes),
        )


def _decontaminate_edges(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Remove the old background from soft edge pixels, within their bounding box only."""
    soft = (alpha > 0) & (alpha < LOCK_ALPHA_THRESHOLD)
    box = bbox_of_mask(soft)
    out = image.copy()
    if box is None:
        return out
    pad = 8
    h, w = alpha.shape
    x0, y0 = max(0, box[0] - pad), max(0, box[1] - pad)
    x1, y1 = min(w, box[2] + pad), min(h, box[3] + pad)
    img = image[y0:y1, x0:x1].astype(np.float32)
    a = alpha[y0:y1, x0:x1]
    f_local, _ = normalized_blur(img, a >= LOCK_ALPHA_THRESHOLD, 3.0)
    b_local, b_support = normalized_blur(img, a <= 0.0, 3.0)
    # Where no background pixel is near (a product filling the crop) keep the photo colour.
    b_local = np.where((b_support > 0.01)[:, :, None], b_local, img)
    f = decontaminate(img, a, b_local, f_local)
    region = soft[y0:y1, x0:x1]
    out[y0:y1, x0:x1][region] = np.clip(np.rint(f[region]), 0, 255).astype(np.uint8)
    return out


def _edge_confidence(alpha: np.ndarray) -> float:
    """1 for a crisp boundary; falls as the undecided band widens past ~2 px on average."""
    hard = (alpha >= 0.5).astype(np.uint8)
    perimeter = int(np.count_nonzero(hard - cv2.erode(hard, np.ones((3, 3), np.uint8))))
    if perimeter == 0:
        return 0.0
    undecided = int(np.count_nonzero((alpha > 0.25) & (alpha < 0.75)))
    ratio = undecided / perimeter
    return float(np.clip(1.0 - (ratio - 2.0) / 6.0, 0.0, 1.0))
