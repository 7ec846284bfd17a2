import dataclasses
import re
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from generation.decoding import UploadRejected
from generation.pipelines.base import GenerationCancelled
from generation.backdrop.styles import STYLE_NAMES
from generation.registry import MODELS
from generation.segmentation import SegmentationError, get_segmenter
from generation.staging import StageOptions, stage_photo


def _size(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{2,5})x(\d{2,5})", value)
    if not match:
        raise CommandError(f"--size takes WIDTHxHEIGHT, e.g. 2048x2048; got {value!r}")
    return int(match.group(1)), int(match.group(2))


class Command(BaseCommand):
    help = (
        "Cut out, generate, lock and check photos on disk without a server. Writes per photo "
        "DIR/<stem>/cutout.png, mask.png, scene-<k>.png and report.json."
    )

    def add_arguments(self, parser):
        parser.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
        parser.add_argument("--out", required=True, type=Path, metavar="DIR")
        parser.add_argument("--segmenter", default=None, help="auto, graphcut or rembg:<model> (default: VITRINE_SEGMENTER); studio is a deprecated alias of graphcut")
        parser.add_argument(
            "--model", default="backdrop-mini",
            help=f"scene model: {', '.join(MODELS)}, or 'none' for a plain backdrop from the lock compositor",
        )
        parser.add_argument(
            "--preset", default=None, metavar="NAME",
            help="scene style, e.g. marble: backdrop-mini's scene class, and words in the prompt for every model",
        )
        parser.add_argument("--prompt", default=None)
        parser.add_argument("--variants", type=int, default=1)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--size", type=_size, default=None, metavar="WxH")
        parser.add_argument("--channel", default=None, help="channel preset (canvas and checks), e.g. marketplace-white, square-2048")

    def handle(self, *args, **opts):
        if not 1 <= opts["variants"] <= 16:
            raise CommandError("--variants must be between 1 and 16")
        missing = [str(p) for p in opts["photos"] if not p.is_file()]
        if missing:
            raise CommandError(f"no such file: {', '.join(missing)}")
        options = StageOptions(
            segmenter=opts["segmenter"] or settings.VITRINE_SEGMENTER,
            model=opts["model"],
            style=opts["preset"],
            prompt=opts["prompt"],
            variants=opts["variants"],
            seed=opts["seed"],
            size=opts["size"],
            channel=opts["channel"],
        )
        if options.model != "none" and options.model not in MODELS:
            raise CommandError(f"unknown scene model {options.model!r}; available: none, {', '.join(MODELS)}")
        if options.model != "none" and MODELS[options.model].backend == "backdrop" and options.style and options.style not in STYLE_NAMES:
            raise CommandError(f"backdrop-mini has no style {options.style!r}; --preset takes one of: {', '.join(STYLE_NAMES)}")
        try:
            segmenter = get_segmenter(options.segmenter, model_dir=settings.VITRINE_REMBG_HOME)
        except (SegmentationError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        # The report names the segmenter that ran ("auto" resolves to one).
        options = dataclasses.replace(options, segmenter=segmenter.name)

        failures = 0
        bar = tqdm(opts["photos"], unit="photo", disable=not sys.stderr.isatty(), file=sys.stderr)
        for path in bar:
            bar.set_description(path.name)
            try:
                report = stage_photo(
                    path=path, out_dir=opts["out"] / path.stem, segmenter=segmenter, options=options,
                    progress=lambda step: bar.set_postfix_str(step),
                )
            except FileNotFoundError as exc:
                raise CommandError(str(exc)) from exc
            except (UploadRejected, SegmentationError, GenerationCancelled, KeyError) as exc:
                failures += 1
                self.stderr.write(f"{path}: {getattr(exc, 'message', exc)}")
                continue
            changed = sum(v["lock_certificate"]["changed_pixels"] for v in report["variants"])
            self.stdout.write(
                f"{path.name}: {len(report['variants'])} scene(s), {report['cutout']['locked_pixels']} locked pixels, "
                f"{changed} changed, {report['timings_s']['total']:.2f} s → {opts['out'] / path.stem}"
            )
        if failures:
            raise CommandError(f"{failures} of {len(opts['photos'])} photo(s) could not be staged")
