"""Sharding rules, mesh construction, and sharded forward + optimizer step == single device."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from policy import sharding as S
from policy.hf_io import load_pretrained
from policy.model import prepare_inputs
from policy.text import Dense
from policy.vision import VisionInputs
from tests.policy import hf_fixtures as F


def test_rules_table_and_fallbacks():
    mesh = S.make_mesh((1, 2, 4))
    assert dict(mesh.shape) == {"data": 1, "fsdp": 2, "tensor": 4}
    assert S.logical_to_spec(("embed", "heads", "head_dim"), (32, 4, 8), mesh) == P("fsdp", "tensor", None)
    # kv_heads=2 does not divide over tensor=4 -> replicated on that dim
    assert S.logical_to_spec(("embed", "kv_heads", "head_dim"), (32, 2, 8), mesh) == P("fsdp", None, None)
    assert S.logical_to_spec(("batch", "length"), (4, 7), mesh) == P("fsdp", None)  # data=1 axis dropped
    assert S.logical_to_spec(("layers", "embed", "mlp"), (3, 32, 64), mesh) == P(None, "fsdp", "tensor")
    with pytest.raises(KeyError, match="RULES"):
        S.logical_to_spec(("nonsense",), (4,), mesh)
    assert dict(S.make_mesh().shape) == {"data": 1, "fsdp": 8, "tensor": 1}
    assert dict(S.make_mesh((2, 4), axis_names=("fsdp", "tensor")).shape) == {"fsdp": 2, "tensor": 4}
    with pytest.raises(ValueError, match="devices"):
        S.make_mesh((3, 2, 2))


def _batch(config):
    rng = np.random.default_rng(0)
    pv, grid = F.pixel_inputs([[1, 4, 4], [1, 4, 6]], seed=0)
    rows = [F.text_tokens(rng, 3) + F.image_span(grid[0]) + F.text_tokens(rng, 4),
            F.text_tokens(rng, 1) + F.image_span(grid[1]) + F.text_tokens(rng, 3)]
    ids, mask = F.left_pad(rows)
    ids, mask, positions, _, meta = prepare_inputs(config, ids, mask, grid)
    labels = np.concatenate([ids[:, 1:], np.zeros_like(ids[:, :1])], 1)
    weights = np.concatenate([mask[:, 1:], np.zeros_like(mask[:, :1])], 1).astype(np.float32)
    return dict(ids=ids, mask=mask, positions=positions, pv=pv, meta=meta, labels=labels, weights=weights)


def _train_step_fn(graphdef, tx):
    def loss_fn(params, b):
        model = nnx.merge(graphdef, params)
        logits, _ = model(b["ids"], b["positions"], b["mask"], b["pv"], VisionInputs(*b["meta"]))
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, b["labels"])
        return jnp.sum(ce * b["weights"]) / jnp.sum(b["weights"]), logits

    @jax.jit
    def step(params, opt_state, b):
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, b)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, logits, grads

    return step


def _run(path, mesh, scan, tx):
    config, model = load_pretrained(path, mesh=mesh, scan_layers=scan)
    graphdef, params = nnx.split(model, nnx.Param)
    b = _batch(config)
    b = {k: (VisionInputs(*map(jnp.asarray, v)) if k == "meta" else jnp.asarray(v)) for k, v in b.items()}
    if mesh is not None:
        bs = {k: S.data_sharding(mesh, v.ndim, 1 if k == "positions" else 0, v.shape)
              for k, v in b.items() if k in ("ids", "mask", "labels", "weights", "positions")}
        b.update({k: jax.device_put(b[k], s) for k, s in bs.items()})
    opt_state = tx.init(params)
    step = _train_step_fn(graphdef, tx)
    if mesh is None:
        new_params, _, loss, logits, grads = step(params, opt_state, b)
    else:  # ambient mesh: the model's logical activation constraints become real
        with jax.set_mesh(mesh):
            new_params, _, loss, logits, grads = step(params, opt_state, b)
    flat = lambda t: {".".join(map(str, p)): np.asarray(v.get_value()) for p, v in nnx.to_flat_state(t)}  # noqa
    return params, float(loss), np.asarray(logits), flat(grads), flat(new_params), np.asarray(b["mask"]) > 0


@pytest.mark.parametrize("mesh_shape,names,scan,opt", [
    ((1, 2, 4), ("data", "fsdp", "tensor"), True, "adamw"),
    ((2, 4), ("fsdp", "tensor"), False, "sgd"),
])
def test_sharded_forward_and_step_match_single_device(tmp_path, mesh_shape, names, scan, opt):
    F.save_hf_model("gqa_untied", tmp_path)
    # Adam's first step is ~lr*sign(g): eps well above float32 reduction-order noise keeps gradients
    # that are ~0 from flipping sign between layouts, so the comparison tests sharding, not conditioning.
    tx = optax.adamw(1e-2, eps=1e-4, weight_decay=0.1) if opt == "adamw" else optax.sgd(1e-1)
    mesh = S.make_mesh(mesh_shape, names)
    params, loss_m, logits_m, grads_m, new_m, mask = _run(tmp_path, mesh, scan, tx)
    # parameters really are spread over the mesh
    specs = {v.get_value().sharding.spec
             for v in jax.tree.leaves(params, is_leaf=lambda x: isinstance(x, nnx.Variable))}
    assert any("tensor" in str(s) for s in specs) and any("fsdp" in str(s) for s in specs)
    _, loss_1, logits_1, grads_1, new_1, _ = _run(tmp_path, None, scan, tx)
    assert abs(loss_m - loss_1) <= 1e-5 * max(1.0, abs(loss_1))
    assert F.rel_err(logits_m, logits_1, mask) <= 1e-5
    for k in grads_1:
        scale = max(np.abs(grads_1[k]).max(), 1e-3)
        assert np.abs(grads_m[k] - grads_1[k]).max() <= 1e-5 * scale + 1e-7, k
        np.testing.assert_allclose(new_m[k], new_1[k], atol=1e-5, rtol=1e-5, err_msg=k)


def test_constrain_is_noop_without_mesh_and_applies_with_one():
    x = jnp.ones((4, 6, 8))
    assert S.constrain(x, ("batch", "length", "act_embed")) is x
    mesh = S.make_mesh((1, 4, 2))
    with jax.set_mesh(mesh):
        y = jax.jit(lambda a: S.constrain(a * 2, ("batch", "length", "act_embed")))(x)
    assert isinstance(y.sharding, NamedSharding) and y.sharding.spec[0] == "fsdp"


def test_a_dense_gathers_its_kernel_over_the_batch_axes_and_keeps_the_tensor_split():
    """FSDP: a weight is all-gathered for its product (left to XLA:TPU, an 8B log-prob forward split the
    product over the contracting dimension instead and moved 15x the bytes); `tensor` stays split."""
    mesh = S.make_mesh((1, 4, 2))
    kernel = jax.device_put(jnp.arange(48.0).reshape(8, 6), NamedSharding(mesh, P("fsdp", "tensor")))
    with jax.set_mesh(mesh):
        gathered = jax.jit(lambda k: S.gather_weight(k, ("embed", "mlp")))(kernel)
    assert gathered.sharding.spec == P(None, "tensor")
    np.testing.assert_array_equal(gathered, kernel)

    dense = Dense((8,), (6,), ("embed",), ("mlp",), use_bias=False, dtype=jnp.float32, param_dtype=jnp.float32,
                  std=0.5, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (4, 3, 8))
    plain = dense(x)
    graphdef, state = nnx.split(dense)
    state = jax.device_put(state, S.state_shardings(state, mesh))
    with jax.set_mesh(mesh):
        traced = jax.jit(lambda st, a: nnx.merge(graphdef, st)(a)).trace(state, x)
        sharded = traced.lower().compile()(state, x)
    constraints = [e for e in traced.jaxpr.eqns if e.primitive.name == "sharding_constraint"]
    assert [e.params["sharding"].spec for e in constraints] == [P(None, "tensor")]
    np.testing.assert_allclose(sharded, plain, rtol=1e-6, atol=1e-6)


def test_sampling_mesh_regroups_the_same_devices_with_a_tensor_axis_of_the_kv_heads():
    devices = jax.devices()
    fsdp = S.make_mesh((1, 8, 1))
    regrouped = S.sampling_mesh(fsdp, kv_heads=4)
    assert dict(regrouped.shape) == {"data": 1, "fsdp": 2, "tensor": 4}
    assert list(regrouped.devices.flat) == list(devices)  # same devices, same order: tensor groups adjacent
    assert S.sampling_mesh(fsdp, kv_heads=3) is fsdp  # 8 devices are no multiple of 3 heads: unchanged
    small = S.make_mesh((2, 2, 2))
    assert S.sampling_mesh(small, kv_heads=8) is small  # 4 devices a slice row: fewer than 8 heads
    assert S.sampling_mesh(S.make_mesh((1, 2, 4)), kv_heads=2).shape["tensor"] == 4  # already wide enough
    data = S.sampling_mesh(S.make_mesh((2, 4, 1)), kv_heads=2)  # data (the DCN axis) is never regrouped
    assert dict(data.shape) == {"data": 2, "fsdp": 2, "tensor": 2}
