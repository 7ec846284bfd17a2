"""The inpainting mask's polarity: the model is told to repaint where the mask is white, i.e.
everywhere but the product. Nothing downstream may hide a flip: these tests call the backend
directly, without the lock that paints the product back afterwards.

A tiny real SD inpainting pipeline (9-channel UNet: 4 noisy latents, 1 mask, 4 masked-image
latents) runs through Vitrine's backend; a forward hook reads what the UNet is given. With
random weights the output pixels say nothing about the mask (the random VAE does not
reproduce its input anywhere), so the check is on the model's own inputs, at every step.
"""

from __future__ import annotations

import numpy as np
import pytest
from diffusers.utils import logging as diffusers_logging

from generation.pipelines.base import SceneRequest
from generation.registry import clear_cache, get_backend, load_scene_backend
from tests.generation.pipeline_fixtures import product_canvas, save_sd_inpaint

diffusers_logging.set_verbosity_error()


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    folder = save_sd_inpaint(tmp_path_factory.mktemp("models") / "sd-inpaint")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VITRINE_MODELS_DIR", str(folder.parent))
        clear_cache()
        yield load_scene_backend("sd-inpaint", device="cpu")
    clear_cache()


def _unet_inputs(backend, request):
    seen = []
    hook = backend.pipe.unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        backend.generate(request)
    finally:
        hook.remove()
    return seen


def test_the_unet_is_told_to_repaint_exactly_where_the_product_is_not(backend):
    image, product = product_canvas(64, 64)
    rules = get_backend("sd-inpaint").rules
    request = SceneRequest(
        image=image, mask=product, prompt="a bottle on a marble table", steps=3, seeds=(1,),
        scheduler=rules.scheduler, guidance=rules.guidance, strength=1.0,
    )

    inputs = _unet_inputs(backend, request)

    # diffusers downsamples the mask to the latent grid by nearest neighbour: pixel (fi, fj)
    # for the VAE's factor f (2 for the tiny VAE, 8 for SD's).
    f = backend.pipe.vae_scale_factor
    white_where_repainted = (~product[::f, ::f]).astype(np.float32)
    assert 0 < white_where_repainted.mean() < 1
    assert len(inputs) == request.steps
    for sample in inputs:
        assert sample.shape[1] == 9
        for row in sample:  # the guided and the unguided half alike
            np.testing.assert_array_equal(row[4].numpy(), white_where_repainted)

