"""policy.rope_index.get_rope_index equals transformers' Qwen3VLModel.get_rope_index."""
import numpy as np
import pytest

from policy.rope_index import get_rope_index

torch = pytest.importorskip("torch")
modeling = pytest.importorskip("transformers.models.qwen3_vl.modeling_qwen3_vl")

IMG, START, END, PAD = 151655, 151652, 151653, 151643


@pytest.fixture(scope="module")
def hf_model():
    """A tiny real Qwen3VLModel: get_rope_index reads only its config (merge size 2)."""
    from transformers import Qwen3VLConfig

    cfg = Qwen3VLConfig(
        text_config=dict(vocab_size=256, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=32, head_dim=8),
        vision_config=dict(depth=1, hidden_size=16, num_heads=2, intermediate_size=32, out_hidden_size=16,
                           deepstack_visual_indexes=[]))
    return modeling.Qwen3VLModel(cfg).eval()


def text(n, rng):
    return rng.integers(0, 150000, n).tolist()


def image(grid):
    return [START] + [IMG] * (int(np.prod(grid)) // 4) + [END]


def batch(rows, padding_side):
    length = max(len(r) for r in rows)
    ids = np.full((len(rows), length), PAD, np.int64)
    mask = np.zeros_like(ids)
    for b, r in enumerate(rows):
        sl = slice(length - len(r), None) if padding_side == "left" else slice(0, len(r))
        ids[b, sl], mask[b, sl] = r, 1
    return ids, mask


def compare(hf_model, ids, grids, mask):
    t_ids = torch.from_numpy(ids)
    ref_pos, ref_delta = hf_model.get_rope_index(
        t_ids, (t_ids == IMG).int(), image_grid_thw=None if grids is None else torch.tensor(grids),
        attention_mask=None if mask is None else torch.from_numpy(mask))
    pos, delta = get_rope_index(ids, grids, mask, spatial_merge_size=2, image_token_id=IMG,
                                vision_start_token_id=START)
    assert pos.dtype == np.int32 and delta.dtype == np.int32
    assert pos.shape == (3, *ids.shape) and delta.shape == (ids.shape[0], 1)
    np.testing.assert_array_equal(pos, ref_pos.numpy())
    np.testing.assert_array_equal(delta, ref_delta.numpy().reshape(-1, 1))
    return pos, delta


def test_text_only(hf_model):
    rng = np.random.default_rng(0)
    ids = np.array([text(9, rng)])
    pos, delta = compare(hf_model, ids, None, None)
    assert (pos == np.arange(9)).all() and delta.item() == 0
    ids, mask = batch([text(5, rng), text(9, rng)], "left")
    compare(hf_model, ids, None, mask)


def test_one_image(hf_model):
    rng = np.random.default_rng(1)
    grid = [1, 6, 10]
    ids = np.array([text(4, rng) + image(grid) + text(6, rng)])
    pos, delta = compare(hf_model, ids, np.array([grid]), None)
    assert delta.item() == max(3, 5) - 15  # jump max(h, w)/2 minus the 15 image tokens


def test_two_images_of_different_sizes(hf_model):
    rng = np.random.default_rng(2)
    grids = [[1, 4, 8], [1, 12, 6]]
    ids = np.array([text(3, rng) + image(grids[0]) + text(2, rng) + image(grids[1]) + text(5, rng)])
    compare(hf_model, ids, np.array(grids), np.ones_like(ids))


def test_left_padded_batch_mixing_image_and_text_rows(hf_model):
    rng = np.random.default_rng(3)
    grids = [[1, 4, 4], [1, 2, 8], [1, 6, 4]]
    rows = [text(5, rng) + image(grids[0]) + text(3, rng),
            text(11, rng),
            image(grids[1]) + text(2, rng) + image(grids[2]) + text(1, rng)]
    ids, mask = batch(rows, "left")
    pos, _ = compare(hf_model, ids, np.array(grids), mask)
    assert (pos[:, 1, : ids.shape[1] - 11] == 0).all()  # padding sits at position 0


def test_right_padding(hf_model):
    rng = np.random.default_rng(4)
    grids = [[1, 8, 2], [1, 4, 4]]
    rows = [text(2, rng) + image(grids[0]), text(7, rng) + image(grids[1]) + text(9, rng), text(3, rng)]
    ids, mask = batch(rows, "right")
    compare(hf_model, ids, np.array(grids), mask)


@pytest.mark.parametrize("seed", range(6))
def test_random_batches(hf_model, seed):
    rng = np.random.default_rng(100 + seed)
    rows, grids = [], []
    for _ in range(int(rng.integers(1, 4))):
        row = text(int(rng.integers(1, 6)), rng)
        for _ in range(int(rng.integers(0, 3))):
            grid = [1, 2 * int(rng.integers(1, 6)), 2 * int(rng.integers(1, 6))]
            grids.append(grid)
            row += image(grid) + text(int(rng.integers(0, 4)), rng)
        rows.append(row)
    ids, mask = batch(rows, "left" if seed % 2 else "right")
    compare(hf_model, ids, np.array(grids) if grids else None, mask)


def test_padded_grid_rows_are_ignored_and_adjacent_images_split():
    grids = [[1, 4, 4], [1, 2, 4]]
    ids = np.array([[7, START] + [IMG] * 4 + [IMG] * 2 + [END]])
    pos, delta = get_rope_index(ids, np.array(grids + [[0, 0, 0]]), vision_start_token_id=None)
    assert pos[:, 0, 2:6].tolist() == [[2, 2, 2, 2], [2, 2, 3, 3], [2, 3, 2, 3]]
    assert pos[:, 0, 6:8].tolist() == [[4, 4], [4, 4], [4, 5]]  # second image starts after the first's jump


def test_mismatches_raise():
    ids = np.array([[1, START, IMG, IMG, IMG, IMG, END]])
    with pytest.raises(ValueError):
        get_rope_index(ids, None)  # image tokens without grids
    with pytest.raises(ValueError):
        get_rope_index(ids, np.array([[1, 4, 4], [1, 4, 4]]))  # unused grid
    with pytest.raises(ValueError):
        get_rope_index(ids, np.array([[1, 4, 8]]))  # too few image tokens
    with pytest.raises(ValueError):
        get_rope_index(np.array([[1, IMG, IMG, IMG, IMG]]), np.array([[1, 4, 4]]))  # no <|vision_start|>
