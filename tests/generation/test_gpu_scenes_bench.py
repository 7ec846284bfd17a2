"""The CPU smoke run of bench/gpu_scenes.py: the benchmark's whole path (architectures from the
configs, plain diffusers against Vitrine's setup, warm-up per bucket, a 3-channel job through
render) on tiny models, 2 steps, a 64² canvas. It checks that the path works and that the
table is complete; it says nothing of GPU speed (docs/benchmarks.md has that, or says why not)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATIONS = ("diffusers defaults", "diffusers half", "vitrine")
BACKENDS = ("sd-inpaint", "sdxl-inpaint", "flux-fill")
#: bench/gpu_scenes.py's smoke buckets, as (height, width)
SMOKE_BUCKETS = {(64, 64), (72, 56), (56, 72), (80, 48), (48, 80)}


def test_the_smoke_run_prints_every_row_with_positive_timings_and_vitrine_runs_in_its_buckets(tmp_path):
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_scenes.py"), "--smoke", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())

    assert [(r["backend"], r["configuration"]) for r in rows] == [(b, c) for b in BACKENDS for c in CONFIGURATIONS]
    for row in rows:
        assert row["seconds_per_image"] > 0 and row["warmup_s"] > 0, row
        assert row["images_per_hour"] == 3600 / row["seconds_per_image"]
        assert row["steps"] == 2
        assert row["call_sizes"] and all(size[2] == 2 for size in row["call_sizes"])  # batch 2
        line = f"| {row['backend']} | {row['configuration']} | {row['dtype']} |"
        assert line in done.stdout, line
    for row in (r for r in rows if r["configuration"] == "vitrine"):
        # every pipeline call, the job's included, ran at a bucket size with the bucket's batch
        assert {(h, w) for h, w, _ in row["call_sizes"]} <= SMOKE_BUCKETS, row["call_sizes"]
        assert row["job_assets"] == 3 * 2  # 3 channels x 2 variants
        assert row["job_wall_s"] > 0 and 0 < row["job_model_share"] < 1
    assert done.stdout.startswith("Machine: CPU")
    assert "no GPU setting applies" in done.stdout


#: Parameters per component, in millions, of the published checkpoints. The inpainting UNets
#: are their base models' (SD 1.5: 859,520,964; SDXL: 2,567,463,684) plus 5 input channels ×
#: 320 × 3 × 3 = 14,400 in conv_in; FLUX Fill's transformer is FLUX.1-dev's (11,901,408,320)
#: with an x_embedder of 384 inputs instead of 64 (+320 × 3,072); T5-XXL's encoder 4,762,310,656;
#: OpenCLIP bigG's text tower 694,659,840; CLIP ViT-L/14's 123,060,480; the VAEs 83,653,863
#: (4 latent channels) and 83,819,683 (FLUX's 16).
PUBLISHED_MILLIONS = {
    "sd-inpaint": {"unet": 859.535364, "vae": 83.653863, "text_encoder": 123.06048},
    "sdxl-inpaint": {"unet": 2567.478084, "vae": 83.653863, "text_encoder": 123.06048, "text_encoder_2": 694.65984},
    "flux-fill": {"transformer": 11902.39136, "vae": 83.819683, "text_encoder": 123.06048, "text_encoder_2": 4762.310656},
}


def test_the_architecture_configs_build_the_published_models(tmp_path):
    """Built on the meta device (no memory): the configs are the published architectures."""
    import torch

    from generation.pipelines.architectures import build_pipeline

    for backend, expected in PUBLISHED_MILLIONS.items():
        pipe = build_pipeline(backend, device="meta", workdir=tmp_path)
        counts = {
            name: sum(p.numel() for p in module.parameters()) / 1e6
            for name, module in pipe.components.items() if isinstance(module, torch.nn.Module)
        }
        assert set(counts) == set(expected), backend
        for name, millions in expected.items():
            assert abs(counts[name] - millions) < 0.0005, (backend, name, counts[name])
