"""Scene backends: the diffusers inpainting pipelines behind one small interface.

What every backend takes and returns is in :mod:`generation.pipelines.base` (importable without
torch); the backends themselves (``sd_inpaint``, ``sdxl_inpaint``, ``flux_fill``) import torch.
Which backends exist, what each accepts and how one is loaded (once per process) is
:mod:`generation.registry`'s business: ``load_scene_backend(model name)``.

What a GPU worker adds: :mod:`.buckets` (the fixed canvas sizes and batch each backend runs
at, torch-free), :mod:`.optimise` (``optimise_for_device``: TF32, channels_last, fused QKV, the
fp16-safe VAE, compile), :mod:`.warmup` (load and run each bucket once at worker start) and
:mod:`.architectures` (the published model configs in ``configs/``, built with random weights
for ``bench/gpu_scenes.py``).
"""
