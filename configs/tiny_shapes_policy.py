"""The main job's starting policy: a tiny Qwen3-VL warm-started to redraw the single-shape SVGs, on a CPU.

    python -m launch.main --config=configs/tiny_shapes_policy.py --workdir=workdir/tiny_shapes_policy
    python -m launch.export_hf --checkpoint=workdir/tiny_shapes_policy --step=0 \
        --out=rl/checkpoints/tiny_shapes_policy

Supervised (image -> reference SVG) steps on the GRPO task stream, no RL step: checkpoint step 0 is the
warm-started policy, and the held-out table printed at the end says whether it reads its image
(colour-aware IoU and attribute accuracy against its own targets and against shuffled ones). RL from a
policy that ignores its image learns nothing GRPO can see with 8 samples a target, and a 150-step warm
start gave such a policy; this one is trained offline and shipped (`rl/checkpoints/tiny_shapes_policy`,
its MODEL_CARD.md), so the main job spends its budget on RL.
Shared keys and their meaning: configs/common.py.
"""
import ml_collections

from configs import tiny_grpo_svg


def get_config() -> ml_collections.ConfigDict:
    c = tiny_grpo_svg.get_config()
    c.model.checkpoint = ""  # build the tiny base policy in the workdir (untrained_base_policy)
    # Qwen3VLConfig.tiny()'s vision tower is 16 wide: a policy warm-started with it placed, sized and shaped
    # its drawing right but drew one colour for most targets, and GRPO then only moved that one colour
    # around (orange -> purple for every target, even with the oracle critic). 64 wide, it sees colour.
    c.model.vision = ml_collections.ConfigDict({"hidden_size": 64, "intermediate_size": 128, "num_heads": 4})
    c.warmstart.steps = 1500
    c.total_steps = 0  # warm start only: step 0 is the product
    c.reward = "mse"  # no RL step runs; a reward without a judge keeps the judge unloaded
    c.heldout.min_image_dependence = 0.0  # report, do not refuse: this run is how the dependence is made
    return c
