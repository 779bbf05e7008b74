"""A sharded, checkpointable train state for any NNX model, and its jitted step.

The model is split once into a static graph, trainable parameters (a pure
dict: what optax updates and orbax saves) and the rest. Parameters and
optimizer state live on their NamedShardings; the step is one `jax.jit`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from policy import sharding as sharding_lib

LossFn = Callable[[nnx.Module, Any, jax.Array], tuple[jax.Array, dict]]  # (model, batch, rng) -> (loss, metrics)


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any  # pure dict of arrays (nnx.to_pure_dict of the nnx.Param state)
    opt_state: Any
    rng: jax.Array


@flax.struct.dataclass
class ModelParts:
    """What `nnx.merge` needs besides the parameters; static across steps."""

    graphdef: Any = flax.struct.field(pytree_node=False)
    rest: Any  # non-Param state (usually empty)


def split_model(model: nnx.Module) -> tuple[ModelParts, dict]:
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return ModelParts(graphdef, rest), nnx.to_pure_dict(params)


def merge_model(parts: ModelParts, params: dict) -> nnx.Module:
    return nnx.merge(parts.graphdef, params, parts.rest)


def param_shardings(model: nnx.Module, mesh: Mesh) -> dict:
    """NamedShardings of the trainable parameters, from their logical axis names."""
    _, params, _ = nnx.split(model, nnx.Param, ...)
    return nnx.to_pure_dict(sharding_lib.state_shardings(params, mesh))


def opt_state_shardings(tx: optax.GradientTransformation, params: dict, shardings: dict):
    """Shardings of `tx.init(params)`: moments follow their parameter's sharding (`shardings`, shaped as
    `params`), counters replicated. From the shardings, not the model, so that a second optimizer over the
    same parameters (the GRPO warm start's) is laid out like the first."""
    mesh = jax.tree.leaves(shardings)[0].mesh
    replicated = NamedSharding(mesh, PartitionSpec())
    return optax.tree_map_params(
        tx, lambda _, s: s, jax.eval_shape(tx.init, params), shardings,
        transform_non_params=lambda _: replicated,
    )


def init_opt_state(tx: optax.GradientTransformation, params: dict, shardings: dict | None = None):
    """Optimizer state for `params`, laid out as `opt_state_shardings` says (when parameter `shardings`
    are given)."""
    if shardings is None:
        return jax.jit(tx.init)(params)
    return jax.jit(tx.init, out_shardings=opt_state_shardings(tx, params, shardings))(params)


def abstract_train_state(model: nnx.Module, tx: optax.GradientTransformation,
                         mesh: Mesh) -> tuple[ModelParts, TrainState]:
    """`init_train_state`'s result as ShapeDtypeStructs with their NamedShardings: nothing is allocated,
    so a step can be lowered and compiled for a mesh of devices this process does not have (launch.aot).
    `model` may be abstract (`nnx.eval_shape`)."""
    parts, params = split_model(model)
    replicated = NamedSharding(mesh, PartitionSpec())
    def spec(x, s):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s)

    shardings = param_shardings(model, mesh)
    params = jax.tree.map(spec, params, shardings)
    opt_state = jax.tree.map(spec, jax.eval_shape(tx.init, params), opt_state_shardings(tx, params, shardings))
    rng = jax.eval_shape(lambda: jax.random.key(0))
    state = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32, sharding=replicated), params=params,
                       opt_state=opt_state, rng=jax.ShapeDtypeStruct(rng.shape, rng.dtype, sharding=replicated))
    return parts, state


def init_train_state(model: nnx.Module, tx: optax.GradientTransformation, *, seed: int = 0,
                     mesh: Mesh | None = None) -> tuple[ModelParts, TrainState]:
    """Split `model` and build its TrainState (sharded over `mesh` when given)."""
    parts, params = split_model(model)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=None, rng=jax.random.key(seed))
    if mesh is None:
        return parts, state.replace(opt_state=init_opt_state(tx, params))
    replicated = NamedSharding(mesh, PartitionSpec())
    shardings = param_shardings(model, mesh)
    params = jax.device_put(params, shardings)
    # Made inside a jit so every process of a multi-host mesh holds the same global counters.
    step, rng = jax.jit(lambda: (jnp.zeros((), jnp.int32), jax.random.key(seed)),
                        out_shardings=(replicated, replicated))()
    state = state.replace(step=step, params=params, opt_state=init_opt_state(tx, params, shardings), rng=rng)
    return parts, state


def state_shardings(state: TrainState) -> TrainState:
    """The shardings the state has now: the train step keeps them fixed."""
    return jax.tree.map(lambda x: x.sharding, state)


def make_train_step(parts: ModelParts, tx: optax.GradientTransformation, loss_fn: LossFn,
                    shardings: TrainState | None = None, donate: bool = True):
    """jit(step)(state, batch) -> (state, metrics); metrics include loss, grad_norm, learning step."""

    def step(state: TrainState, batch) -> tuple[TrainState, dict]:
        rng, step_rng = jax.random.split(state.rng)

        def loss_of(params):
            return loss_fn(merge_model(parts, params), batch, step_rng)

        (loss, metrics), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics, loss=loss, grad_norm=optax.global_norm(grads))
        return TrainState(state.step + 1, params, opt_state, rng), metrics

    out_shardings = (shardings, None) if shardings is not None else None
    return jax.jit(step, out_shardings=out_shardings, donate_argnums=(0,) if donate else ())
