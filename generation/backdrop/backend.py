"""backdrop-mini as a scene backend (the interface every model behind the registry has)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from generation.pipelines.base import SceneRequest, StepCallback, check_request
from generation.registry import get_backend

from .pipeline import BackdropPipeline
from .styles import DEFAULT_PALETTE, STYLE_NAMES


class BackdropBackend:
    """The bundled CPU model. Its sampling rules (DDIM only: it was trained and tested with
    it) are the ``backdrop`` backend's in :data:`generation.registry.BACKENDS`."""

    name = "backdrop-mini"
    rules = get_backend("backdrop").rules

    def __init__(self, pipeline: BackdropPipeline, folder: Path):
        self.pipeline = pipeline
        self.folder = folder
        self._weights_sha256 = {
            str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*.safetensors"))
        }

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | None = None) -> BackdropBackend:
        """Load the model folder (``backdrop.json``, ``unet/``, ``scheduler/``); CPU only."""
        if device not in (None, "cpu"):
            raise ValueError(f"backdrop-mini runs on the CPU only, not on {device!r}")
        folder = Path(folder)
        if not (folder / "backdrop.json").is_file():
            raise FileNotFoundError(f"no backdrop-mini model in {folder} (backdrop.json is missing)")
        return cls(BackdropPipeline.from_pretrained(folder), folder)

    def generate(self, request: SceneRequest, *, callback: StepCallback | None = None) -> list[np.ndarray]:
        check_request(request, self.rules)
        output = self.pipeline(
            image=request.image,
            mask=request.mask,
            style=request.style or STYLE_NAMES[0],
            palette=request.palette or DEFAULT_PALETTE,
            seeds=request.seeds,
            num_inference_steps=request.steps,
            callback=callback,
        )
        return [np.asarray(image.convert("RGB")) for image in output.images]

    def describe(self) -> dict:
        import diffusers
        import torch

        return {
            "backend": "backdrop",
            "model": self.name,
            "folder": str(self.folder),
            "weights_sha256": self._weights_sha256,
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "device": "cpu",
            "dtype": "float32",
        }
