"""`manage.py verify ASSET ORIGINAL`: the verifier from the command line."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from tests.generation.test_verify import _assets, _photo


def test_verify_prints_the_verdict_and_fails_on_a_swapped_original(tmp_path) -> None:
    original, rgb, mask = _photo()
    (asset,) = _assets(original, rgb, mask, ("square-2048",))
    (tmp_path / "asset.png").write_bytes(asset.png)
    (tmp_path / "photo.png").write_bytes(original)
    (tmp_path / "other.png").write_bytes(_photo(seed=3)[0])

    out = io.StringIO()
    call_command("verify", str(tmp_path / "asset.png"), str(tmp_path / "photo.png"), stdout=out)
    assert out.getvalue().startswith("resampled-as-declared: 0 of ")

    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify", str(tmp_path / "asset.png"), str(tmp_path / "other.png"), stdout=out)
    assert exit_info.value.code == 1
    assert out.getvalue().startswith("changed: ")
