"""The step-time estimate's arithmetic (policy.step_time), the HLO cost reader's loop counting
(policy.hlo_cost) and the splash kernels' FLOPs, on cases small enough to count by hand."""
import jax
import jax.numpy as jnp
import pytest

from policy import hlo_cost, step_time
from policy.attention import splash_kernel_flops
from policy.step_time import CHIPS, Phase, Work


def test_step_estimate_by_hand():
    chip = CHIPS["v5p"]  # 459e12 FLOP/s, 2,765e9 B/s
    compute_bound = Phase("a", Work(flops=2 * 459e12, bytes=2765e9), Work(flops=459e12), calls=3)  # 2 s (1 s ideal)
    memory_bound = Phase("b", Work(bytes=2 * 2765e9), Work(bytes=2765e9 / 4), calls=0.5)  # 2 s (0.25 s ideal)
    estimate = step_time.estimate_step([compute_bound, memory_bound], chip)
    assert estimate.seconds == pytest.approx(3 * 2 + 0.5 * 2)
    assert estimate.ideal_seconds == pytest.approx(3 * 1 + 0.5 * 0.25)
    assert estimate.ratio == pytest.approx(7 / 3.125)
    assert step_time.step_line(5, 6, 80 * step_time.GiB, chip, estimate) == (
        "fits 5/6 programs; peak 80.00 GiB of 95 GiB per chip; step >= 7.0 s (ideal 3.1 s, 2.24 x)")


def test_ideal_work_by_hand():
    # update: 3 passes x 2 FLOPs x (10 params x 100 tokens + 2 vision params x 50 patches) over 4 chips
    assert step_time.forward_work(10, 2, 100, 50, 4, passes=3) == Work(flops=1650.0)
    # 4 steps, 2 rows of 1 prompt of 3 tokens: prompt cache read 4 x 3 times, generated slots 0+1+2+3 per row
    work = step_time.decode_work(weight_bytes=8, kv_bytes_per_token=2, prompts=1, prompt_len=3, rows=2, steps=4,
                                 text_params=10, chips=2)
    assert work == Work(flops=2 * 10 * 2 * 4 / 2, bytes=(4 * 8 + (12 + 2 * 6) * 2) / 2)


def test_splash_flops_by_hand():
    # vision (mha, full mask): 2 heads x 128 queries x 512 keys x 8 dims, two products of 2 FLOPs
    fwd = splash_kernel_flops("splash_mha_fwd_segmented_residuals.3", (2, 128, 8), (2, 512, 8))
    assert fwd == 2 * 2 * 2 * 128 * 512 * 8
    assert splash_kernel_flops("splash_mha_dkv_segmented", (2, 128, 8), (2, 512, 8)) == 2 * 4 * 2 * 128 * 512 * 8
    # text (mqa, causal): 1,024 keys in 2 blocks of 512: 3 of 4 blocks computed
    assert splash_kernel_flops("splash_mqa_dq_segmented", (2, 4, 1024, 64), (2, 1024, 64)) == (
        2 * 3 * 8 * 1024 * 1024 * 64 * 0.75)
    with pytest.raises(ValueError, match="not a splash kernel"):
        splash_kernel_flops("flash_fwd", (1, 8, 8), (1, 8, 8))


def _scan(w, x):
    return jax.lax.scan(lambda x, w: (jnp.tanh(x @ w), None), x, w)[0]


def test_hlo_cost_counts_every_trip_of_a_scan():
    """XLA's cost analysis counts a loop body once; the reader counts 10 layers, each reading its slice."""
    layers, rows, dim = 10, 256, 512
    w, x = jax.ShapeDtypeStruct((layers, dim, dim), jnp.float32), jax.ShapeDtypeStruct((rows, dim), jnp.float32)
    compiled = jax.jit(_scan).lower(w, x).compile()
    cost = hlo_cost.program_cost(compiled.as_text())
    assert cost.flops == layers * 2 * rows * dim * dim
    slice_bytes, act_bytes = dim * dim * 4, rows * dim * 4
    # each layer reads its weight slice and the activations and writes them back: not the whole stack
    assert layers * (slice_bytes + 2 * act_bytes) <= cost.bytes <= layers * 3 * (slice_bytes + 2 * act_bytes)


def test_hlo_cost_takes_data_dependent_trips_from_the_caller():
    def power(x, n):
        return jax.lax.while_loop(lambda c: c[1] < n, lambda c: (c[0] @ c[0], c[1] + 1), (x, 0))[0]

    spec = jax.ShapeDtypeStruct((128, 128), jnp.float32)
    text = jax.jit(power).lower(spec, jax.ShapeDtypeStruct((), jnp.int32)).compile().as_text()
    assert hlo_cost.program_cost(text, (7,)).flops == 7 * 2 * 128**3
    with pytest.raises(hlo_cost.HloParseError, match="no known trip count"):
        hlo_cost.program_cost(text)
    with pytest.raises(hlo_cost.HloParseError, match="more entries"):
        hlo_cost.program_cost(text, (7, 3))


_FUSED_MATMUL = """HloModule m, is_scheduled=true

%pass_through (p0: f32[4,1024,256]) -> f32[4,1024,256] {
  %p0 = f32[4,1024,256]{2,1,0} parameter(0)
  ROOT %b = f32[4,1024,256]{2,1,0} bitcast(%p0)
}

%layer_matmul (q0: f32[4,1024,256], q1: f32[8,1024], q2: s32[]) -> f32[8,256] {
  %q0 = f32[4,1024,256]{2,1,0} parameter(0)
  %q1 = f32[8,1024]{1,0} parameter(1)
  %q2 = s32[] parameter(2)
  %zero = s32[] constant(0)
  %f = f32[4,1024,256]{2,1,0} fusion(%q0), kind=kLoop, calls=%pass_through
  %w = f32[1,1024,256]{2,1,0} dynamic-slice(%f, %q2, %zero, %zero), dynamic_slice_sizes={1,1024,256}
  %w2 = f32[1024,256]{1,0} bitcast(%w)
  ROOT %d = f32[8,256]{1,0} dot(%q1, %w2), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%whole_matmul (r0: f32[1024,256], r1: f32[8,1024]) -> f32[8,256] {
  %r0 = f32[1024,256]{1,0} parameter(0)
  %r1 = f32[8,1024]{1,0} parameter(1)
  %g = f32[1024,256]{1,0} fusion(%r0), kind=kLoop, calls=%pass_through2
  ROOT %e = f32[8,256]{1,0} dot(%r1, %g), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%pass_through2 (s0: f32[1024,256]) -> f32[1024,256] {
  %s0 = f32[1024,256]{1,0} parameter(0)
  ROOT %c = f32[1024,256]{1,0} bitcast(%s0)
}

ENTRY %main (a: f32[4,1024,256], x: f32[8,1024], i: s32[], b: f32[1024,256]) -> (f32[8,256], f32[8,256]) {
  %a = f32[4,1024,256]{2,1,0} parameter(0)
  %x = f32[8,1024]{1,0} parameter(1)
  %i = s32[] parameter(2)
  %b = f32[1024,256]{1,0} parameter(3)
  %y = f32[8,256]{1,0} fusion(%a, %x, %i), kind=kOutput, calls=%layer_matmul
  %z = f32[8,256]{1,0} fusion(%b, %x), kind=kOutput, calls=%whole_matmul
  ROOT %t = (f32[8,256]{1,0}, f32[8,256]{1,0}) tuple(%y, %z)
}
"""


def test_hlo_cost_reads_a_sliced_operand_by_its_slice_and_a_passed_through_one_whole():
    cost = hlo_cost.program_cost(_FUSED_MATMUL)
    assert cost.flops == 2 * (2 * 8 * 1024 * 256)
    weight, acts, out, index = 1024 * 256 * 4, 8 * 1024 * 4, 8 * 256 * 4, 4
    # layer_matmul reads one [1024, 256] layer of the stacked weights (through a nested fusion and a
    # slice); whole_matmul's weight leaves its nested fusion whole, so all of it is read
    assert cost.bytes == (weight + acts + index + out) + (weight + acts + out)


_PALLAS_CALL = """HloModule m, is_scheduled=true

ENTRY %main (q: bf16[2,1,4,128], k: bf16[3,2,1,512,128]) -> f32[2,1,4,128] {
  %q = bf16[2,1,4,128]{3,2,1,0} parameter(0)
  %k = bf16[3,2,1,512,128]{4,3,2,1,0} parameter(1)
  ROOT %KERNEL = f32[2,1,4,128]{3,2,1,0} custom-call(%q, %k), custom_call_target="tpu_custom_call", \
backend_config={"flag_configs":[],"custom_call_config":{"body":"TUzv",COST"needs_layout_passes":true}}
}
"""


def test_hlo_cost_takes_a_pallas_kernels_work_from_its_cost_estimate():
    """A kernel reading one layer of a stacked operand counts the bytes its `pl.CostEstimate` gives (here a
    512-slot layer slice, not the 3-layer stack); a kernel without one is refused, not counted as 0."""
    estimate = '"cost_estimate":{"flops":"1048576","transcendentals":"4096","bytes_accessed":"532480",' \
               '"remote_bytes_transferred":"0"},'
    cost = hlo_cost.program_cost(_PALLAS_CALL.replace("KERNEL", "flash_decode.3").replace("COST", estimate))
    assert (cost.flops, cost.bytes) == (1048576, 532480)
    with pytest.raises(NotImplementedError, match="cost_estimate"):
        hlo_cost.program_cost(_PALLAS_CALL.replace("KERNEL", "flash_decode.3").replace("COST", ""))
