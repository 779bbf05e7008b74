"""rl.batch.build_batch encodes each prompt's images once for its G completions, and the model gives
the same logits as encoding them once per row (unbinned), with or without vision bins (patch_start
then counts real patches while the bins hold padding between images)."""
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from policy.config import Qwen3VLConfig
from policy.model import init_model, prepare_inputs
from policy.vision import VisionInputs
from rl.batch import build_batch
from tests.policy import hf_fixtures as F


def _prompts():
    rng = np.random.default_rng(0)
    pv, grid = F.pixel_inputs([[1, 4, 4], [1, 4, 6], [1, 4, 4]], patch_dim=Qwen3VLConfig.tiny().vision.patch_dim)
    rows = [F.text_tokens(rng, 2) + F.image_span(grid[0]) + F.text_tokens(rng, 1) + F.image_span(grid[1]),
            F.text_tokens(rng, 3),
            F.text_tokens(rng, 1) + F.image_span(grid[2]) + F.text_tokens(rng, 2)]
    ids, mask = F.left_pad(rows)
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": pv, "image_grid_thw": grid}


@pytest.mark.parametrize("vision_bin, bucket", [(0, 128), (48, 144)])  # 48: images of 16 + 24 share a bin
def test_each_prompt_image_is_encoded_once_and_logits_match_per_row_encoding(vision_bin, bucket):
    config = Qwen3VLConfig.tiny()
    model = init_model(Qwen3VLConfig.tiny(vision_bin=vision_bin))
    prompt, G = _prompts(), 3
    rng = np.random.default_rng(1)
    completions = rng.integers(1, 100, size=(9, 5))
    lengths = rng.integers(1, 6, size=9)
    batch = build_batch(model.config, prompt, completions, lengths, G, patch_buckets=(bucket,))
    real = (batch["vision"].segment_ids >= 0).sum()
    assert real == len(prompt["pixel_values"]) and batch["pixel_values"].shape[0] == bucket

    # The same rows with every row's images repeated (one encoding per completion).
    grids, rows = prompt["image_grid_thw"], np.arange(9) // G
    per_prompt = {0: [0, 1], 1: [], 2: [2]}
    starts = np.concatenate([[0], np.cumsum(grids.prod(1))])
    images = [i for p in rows for i in per_prompt[p]]
    repeated = np.concatenate([prompt["pixel_values"][starts[i]:starts[i + 1]] for i in images])
    ids, mask, positions, _, meta = prepare_inputs(config, batch["input_ids"], batch["attention_mask"], grids[images])
    np.testing.assert_array_equal(positions, batch["positions"])

    forward = nnx.jit(lambda m, *a, **k: m(*a, **k)[0])
    once = forward(model, *(jnp.asarray(batch[k]) for k in ("input_ids", "positions", "attention_mask",
                                                           "pixel_values")),
                   VisionInputs(*(jnp.asarray(x) for x in batch["vision"])),
                   patch_start=jnp.asarray(batch["patch_start"]))
    per_row = forward(init_model(config), jnp.asarray(ids), jnp.asarray(positions), jnp.asarray(mask),
                      jnp.asarray(repeated), VisionInputs(*(jnp.asarray(x) for x in meta)))
    keep = mask.astype(bool)
    np.testing.assert_allclose(np.asarray(once)[keep], np.asarray(per_row)[keep], atol=1e-5, rtol=0)
