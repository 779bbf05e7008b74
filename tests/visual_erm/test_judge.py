"""VisualERM: one re-ask of unparsable critiques; on several hosts the same sampler calls whatever each
host's number of pairs (two `jax.distributed` processes with 9 and 3 pairs agree with one process)."""
import json

import pytest

from policy import tiny_checkpoint
from policy.image_processor import DEFAULT_PATCH_BUCKETS
from tests.multihost import run_one_process, run_two_processes
from visual_erm.judge import VisualERM, judge_patch_buckets

VALID = '{"errors": [{"category": "data_error", "severity": 2, "location": "x", "description": "d"}]}'


def fake_judge(answers, reasks):
    """A VisualERM whose raw outputs come from `answers` (one list per call)."""
    judge = object.__new__(VisualERM)
    judge.reasks, judge.calls = reasks, []

    def critique_texts(kinds, references, candidates, *, rng=None):
        judge.calls.append(list(references))
        return answers[len(judge.calls) - 1]

    judge.critique_texts = critique_texts
    return judge


def test_unparsable_critiques_are_asked_for_once_more():
    judge = fake_judge([["rambling", VALID, "still rambling"], [VALID, "no json"]], reasks=1)
    critiques = judge.critique(["chart"] * 3, ["r0", "r1", "r2"], ["c0", "c1", "c2"])
    assert judge.calls == [["r0", "r1", "r2"], ["r0", "r2"]]  # only the unparsable pairs, once
    assert [c.valid for c in critiques] == [True, True, False]
    assert critiques[0].total_severity == 2


def test_no_reask_when_disabled_or_all_parse():
    judge = fake_judge([["rambling", VALID]], reasks=0)
    assert [c.valid for c in judge.critique(["svg"] * 2, ["a", "b"], ["a", "b"])] == [False, True]
    judge = fake_judge([[VALID]], reasks=1)
    judge.critique(["svg"], ["a"], ["a"])
    assert len(judge.calls) == 1


@pytest.mark.slow
def test_two_processes_with_uneven_pairs_judge_what_one_process_judges(tmp_path):
    tiny_checkpoint.build(str(tmp_path / "model"), ["compare the two images"] * 20, vocab_size=300,
                          max_pixels=48 * 48)
    run_one_process("tests.visual_erm.multihost_judge", tmp_path / "model", tmp_path / "single.json")
    run_two_processes("tests.visual_erm.multihost_judge", tmp_path / "model", tmp_path / "multi.json")
    one = json.loads((tmp_path / "single.json.0").read_text())
    parts = [json.loads((tmp_path / f"multi.json.{p}").read_text()) for p in (0, 1)]
    assert len(parts[0]["texts"]) == 9 and len(parts[1]["texts"]) == 3
    assert parts[0]["texts"] + parts[1]["texts"] == one["texts"]
    assert parts[0]["valid"] + parts[1]["valid"] == one["valid"]


def test_judge_patch_buckets_grow_with_the_call_size():
    assert judge_patch_buckets(8) == DEFAULT_PATCH_BUCKETS  # 8 pairs of two 1,024-px images: the defaults
    assert judge_patch_buckets(1) == DEFAULT_PATCH_BUCKETS
    grown = judge_patch_buckets(32)
    assert grown[:len(DEFAULT_PATCH_BUCKETS)] == DEFAULT_PATCH_BUCKETS
    assert grown[len(DEFAULT_PATCH_BUCKETS):] == (131072, 262144)  # 32 pairs x 2 x 4,096 patches
