"""Coverage-guided fuzzing of the upload rules with atheris (optional: `pip install atheris`).

    .venv/bin/python bench/fuzz_upload_atheris.py [CORPUS_DIR] -runs=100000 -max_len=65536

Feeds libFuzzer's inputs to generation.decoding.validate_image, the checks every upload passes
(catalog.services.photo_upload wraps it with storage and the row; tests/catalog/test_upload_fuzz.py
fuzzes that whole path with hypothesis). Any exception other than UploadRejected is a crash
and libFuzzer writes the input to crash-<sha1>. Seeds: a JPEG, a PNG and a WebP made here; a
corpus directory, if given, is grown with the inputs that reach new code."""
import io
import sys
import warnings
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    from PIL import Image

    from generation.decoding import UploadRejected, validate_image

# Small caps keep each input cheap: a header declaring a huge image meets the pixel cap.
LIMITS = {"max_bytes": 50 * 1024 * 1024, "max_pixels": 4_000_000, "working_max_side": 1024}


def seeds() -> list[bytes]:
    made = []
    for fmt in ("JPEG", "PNG", "WEBP"):
        buffer = io.BytesIO()
        Image.new("RGB", (32, 24), (200, 30, 30)).save(buffer, format=fmt, icc_profile=b"\x01" * 64)
        made.append(buffer.getvalue())
    return made


def one_input(data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's "Corrupt EXIF data" and friends
        try:
            validate_image(io.BytesIO(data), size_bytes=len(data), **LIMITS)
        except UploadRejected:
            pass


def main() -> None:
    args = sys.argv
    corpus = next((a for a in args[1:] if not a.startswith("-")), None)
    if corpus is not None:
        folder = Path(corpus)
        folder.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds()):
            (folder / f"seed-{i}").write_bytes(seed)
    atheris.Setup(args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
