"""backdrop-mini as a scene backend (the interface every model behind the registry has)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from generation.pipelines.base import SceneRequest, StepCallback, check_request

from .pipeline import BackdropPipeline
from .presets import DEFAULT_PALETTE, PRESET_NAMES



class BackdropBackend:
    """The bundled CPU model. DDIM is its only sampler (it was trained and tested with it)."""

    name = "backdrop-mini"
    schedulers = ("ddim",)

    def __init__(self, pipeline: BackdropPipeline, folder: Path):
        self.pipeline = pipeline
        self.folder = folder
        self._weights_sha256 = {
            str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*.safetensors"))
        }

    @classmethod
    def from_folder(cls, folder: str | Path) -> BackdropBackend:
        folder = Path(folder)
        if not (folder / "backdrop.json").is_file():
            raise FileNotFoundError(f"no backdrop-mini model in {folder} (backdrop.json is missing)")
        return cls(BackdropPipeline.from_pretrained(folder), folder)

    def generate(self, request: SceneRequest, *, callback: StepCallback | None = None) -> list[np.ndarray]:
        check_request(request, schedulers=self.schedulers)
        preset = request.preset or PRESET_NAMES[0]
        output = self.pipeline(
            image=request.image,
            mask=request.mask,
            preset=preset,
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
