"""Scene backends: the diffusers inpainting pipelines behind one small interface.

What every backend takes and returns is in :mod:`generation.pipelines.base` (importable without
torch); the backends themselves (``sd_inpaint``, ``sdxl_inpaint``, ``flux_fill``) import torch.
Which backends exist, what each accepts and how one is loaded (once per process) is
:mod:`generation.registry`'s business: ``load_scene_backend(model name)``.
"""
