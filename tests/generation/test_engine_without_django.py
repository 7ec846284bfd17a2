"""The engine is a plain library: a notebook stages a photo with no Django settings at all."""
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.images import product_on_white

ROOT = Path(__file__).resolve().parents[2]

NOTEBOOK = """
import json, sys
from pathlib import Path
from generation.segmentation import get_segmenter
from generation.staging import StageOptions, stage_photo

report = stage_photo(path=Path(sys.argv[1]), out_dir=Path(sys.argv[2]), segmenter=get_segmenter(), options=StageOptions(variants=2))
print(json.dumps({
    "django": sorted(m for m in sys.modules if m == "django" or m.split(".")[0] in ("catalog", "brand", "studio", "config")),
    "changed": [v["lock_certificate"]["changed_pixels"] for v in report["variants"]],
    "locked": report["cutout"]["locked_pixels"],
}))
"""


def test_a_notebook_stages_a_photo_end_to_end_without_django(tmp_path):
    photo = tmp_path / "bottle.png"
    photo.write_bytes(product_on_white(size=(160, 120), seed=4))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}

    out = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, str(photo), str(tmp_path / "out")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )

    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["django"] == []
    assert result["changed"] == [0, 0]
    assert result["locked"] > 1000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cutout.png", "mask.png", "report.json", "scene-0.png", "scene-1.png"]
