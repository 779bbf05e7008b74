"""`launch.aot` compiles the GRPO trainer's own programs: the same optimizer state (MultiSteps
included) and the same lowered update and log-prob programs as a `GRPOTrainer` of the same config."""
import jax
import pytest

import render
from rl.aot import grpo_programs
from rl.models import prepare_policy
from rl.trainer import GRPOTrainer
from tests.rl.test_trainer import tiny_config


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    with render.RenderPool(workers=1) as pool:
        return prepare_policy(tiny_config(), str(tmp_path_factory.mktemp("grpo_aot")), pool)


def _layout(tree):
    return jax.tree.map(lambda x: (x.shape, x.dtype, x.sharding), tree)


@pytest.mark.slow  # builds a tiny checkpoint and a trainer (~40 s of CPU)
def test_aot_programs_are_the_trainers(policy_dir, tmp_path):
    overrides = {"model.checkpoint": policy_dir, "reward": "mse", "prompts_per_step": 2, "group_size": 2,
                 "micro_batches": 1, "max_new_tokens": 16, "grpo.kl_coef": 0.01, "grpo.grad_accumulation": 2,
                 "render_workers": 1, "mesh_shape": (1, 4, 1)}
    config = tiny_config(**overrides)
    trainer = GRPOTrainer(config, str(tmp_path / "run"))
    try:
        programs = {p.name: p for p in grpo_programs(config, trainer.run.mesh, hosts=1)}
        update = programs["update step"]
        aot_state = update.args[0]
        assert jax.tree.structure(aot_state) == jax.tree.structure(trainer.run.state)  # MultiSteps state included
        assert _layout(aot_state) == _layout(trainer.run.state)
        steps = trainer.update.steps
        for name, fn in (("update step", steps.update), ("old log-probs", steps.logprobs),
                         ("ref log-probs", steps.tempered_logprobs)):
            program = programs[name]
            with jax.set_mesh(trainer.run.mesh):
                assert fn.lower(*program.args).as_text() == program.lower().as_text(), name
        # The sampler's programs run on the sampler's own mesh, on the layout its reshard produces.
        sampler = trainer.sampler
        decode = programs["policy decode"]
        assert decode.mesh == sampler.sampling_mesh and sampler.sampling_mesh.shape["tensor"] > 1
        assert _layout(decode.args[1]) == _layout(sampler.sampling_state()[1])
        # The check can fail: without the accumulation wrapper the state is another tree.
        plain = grpo_programs(tiny_config(**dict(overrides, **{"grpo.grad_accumulation": 1})), trainer.run.mesh, 1)
        plain_state = next(p for p in plain if p.name == "update step").args[0]
        assert jax.tree.structure(plain_state) != jax.tree.structure(trainer.run.state)
    finally:
        trainer.close()
