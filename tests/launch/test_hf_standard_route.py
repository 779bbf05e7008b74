"""Exports load the standard transformers way and generate the JAX sampler's greedy tokens.

For the shipped tiny judge, a tiny Visual-ERM SFT export and a tiny GRPO export (each written by
`python -m launch.export_hf` from an orbax run of that trainer, the base model where the trainer
puts it): `AutoProcessor.from_pretrained(DIR)` + `processor.apply_chat_template(messages, ...)` +
`Qwen3VLForConditionalGeneration.from_pretrained(DIR).generate(**inputs)`, no extra arguments, gives
the tokens of `policy.Sampler` (greedy) on `policy.Processor`'s batch; and the model card's
transformers snippet runs as written (with PATH set to the directory) and prints the JAX text.

Without torchvision (this machine: the registry's torchvision is the CUDA build, whose `_C.so`
needs `libc10_cuda.so`, absent from the CPU torch) `AutoProcessor` cannot be built at all in
transformers 5.25: `Qwen3VLProcessor` requires a video processor and every video processor class is
torchvision-only. The test then checks that this is still the only obstacle (the exact error), and
runs the same route with the video sub-processor left out (two monkeypatches); everything else
(processor config, chat template, PIL image processor, tokenizer, `mm_token_type_ids`) is
transformers' own loading and processing code. With torchvision installed nothing is patched.
"""
import contextlib
import importlib.util
import io
import json
import os
import re

import jax
import ml_collections
import pytest
from PIL import Image, ImageDraw

from configs.tiny_grpo_svg import TINY_SHAPES_JUDGE
from launch import export_hf
from policy import tiny_checkpoint
from policy.checkpointing import Checkpointer, write_config
from policy.hf_io import load_pretrained
from policy.optimizer import make_optimizer
from policy.processor import Processor
from policy.sampler import Sampler
from policy.train_state import init_train_state
from visual_erm.prompts import judge_messages, judge_prompt, policy_prompt

MAX_NEW = 48
BASE_DIR = {"visual_erm_sft": "base_model", "grpo": "untrained_base_policy"}


def torchvision_works() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
    except Exception:  # a torchvision built for another torch fails at import (e.g. torchvision::nms)
        return False
    return True


@pytest.fixture
def standard_route(monkeypatch):
    """AutoProcessor as is where torchvision works; else without its torchvision-only video processor."""
    if torchvision_works():
        return
    from transformers import AutoProcessor
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor
    from transformers.processing_utils import ProcessorMixin

    with pytest.raises(ImportError, match="Qwen3VLVideoProcessor requires the Torchvision library"):
        AutoProcessor.from_pretrained(TINY_SHAPES_JUDGE)
    check = ProcessorMixin.check_argument_for_proper_class

    def no_video_processor(cls, *args, **kwargs):
        return None

    def check_except_absent_video(self, name, argument):
        return None if name == "video_processor" and argument is None else check(self, name, argument)

    monkeypatch.setattr(AutoVideoProcessor, "from_pretrained", classmethod(no_video_processor))
    monkeypatch.setattr(ProcessorMixin, "check_argument_for_proper_class", check_except_absent_video)


def shape(kind: str, colour: str, box) -> Image.Image:
    image = Image.new("RGB", (32, 32), "white")
    draw = ImageDraw.Draw(image)
    (draw.ellipse if kind == "circle" else draw.rectangle)(box, fill=colour)
    return image


def stop_ids(path: str) -> list[int]:
    with open(os.path.join(path, "generation_config.json")) as f:
        eos = json.load(f)["eos_token_id"]
    return list(eos) if isinstance(eos, list) else [eos]


def jax_greedy(path: str, messages) -> list[int]:
    processor = Processor.from_pretrained(path)
    _, model = load_pretrained(path)
    batch = processor([messages])
    out = Sampler(model, pad_id=processor.pad_token_id, stop_ids=stop_ids(path)).generate(
        batch["input_ids"], batch["attention_mask"], batch["pixel_values"], batch["image_grid_thw"],
        max_new_tokens=MAX_NEW)
    return out.tokens[0, :out.lengths[0]].tolist()


def hf_greedy(path: str, messages) -> list[int]:
    """The standard route, no extra arguments."""
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(path)
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert type(processor.image_processor).__name__ == "Qwen2VLImageProcessorPil"
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                           return_tensors="pt")
    model = Qwen3VLForConditionalGeneration.from_pretrained(path).eval()
    out = model.generate(**inputs, max_new_tokens=MAX_NEW, do_sample=False)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def make_run(root, trainer: str) -> str:
    """A run directory of `trainer`: its base model where the trainer puts it, one perturbed checkpoint."""
    workdir = str(root / trainer)
    base = os.path.join(workdir, BASE_DIR[trainer])
    texts = [policy_prompt(k) for k in ("chart", "table", "svg")] * 5 + [judge_prompt("svg")] * 5
    tiny_checkpoint.build(base, texts, vocab_size=320, max_pixels=32 * 32)
    config = {"trainer": trainer, "seed": 0, "model": {"checkpoint": "", "dtype": "float32"}}
    write_config(workdir, ml_collections.ConfigDict(config))
    _, model = load_pretrained(base)
    optimizer = ml_collections.ConfigDict({"learning_rate": 1e-3, "total_steps": 10})
    _, state = init_train_state(model, make_optimizer(optimizer), seed=0)
    leaves, treedef = jax.tree.flatten(state.params)
    keys = jax.random.split(jax.random.key(3), len(leaves))
    params = jax.tree.unflatten(treedef, [x + 0.2 * jax.random.normal(k, x.shape, x.dtype)
                                          for x, k in zip(leaves, keys)])
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
    checkpointer.save(4, state.replace(params=params), {"data": {"position": 4}})
    checkpointer.close()
    return workdir


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("standard_route")
    out = {"shipped judge": TINY_SHAPES_JUDGE}
    for trainer in BASE_DIR:
        result = export_hf.main([f"--checkpoint={make_run(root, trainer)}", f"--out={root / (trainer + '_hf')}"])
        assert result["trainer"] == trainer and result["step"] == 4
        out[trainer] = result["out"]
    return out


def judge_pair():
    return judge_messages("svg", shape("circle", "red", (6, 6, 22, 22)), shape("square", "blue", (10, 8, 28, 26)))


def policy_messages():
    return [{"role": "user", "content": [{"type": "image", "image": shape("square", "green", (4, 4, 20, 20))},
                                         {"type": "text", "text": policy_prompt("svg")}]}]


@pytest.mark.parametrize("name", ["shipped judge", "visual_erm_sft", "grpo"])
def test_standard_route_generates_the_jax_greedy_tokens(exports, standard_route, name):
    path = exports[name]
    messages = judge_pair() if name != "grpo" else policy_messages()
    ours = jax_greedy(path, messages)
    theirs = hf_greedy(path, messages)
    print(f"[{name}] {len(ours)} JAX greedy tokens; transformers: {len(theirs)}")
    assert len(ours) >= 8  # a real continuation, not an immediate stop
    assert theirs[:len(ours)] == ours
    assert len(theirs) == len(ours) or len(ours) == MAX_NEW


def card_snippet(card_path: str) -> str:
    with open(card_path, encoding="utf-8") as f:
        text = f.read()
    blocks = re.findall(r"## Load with transformers\n\n```python\n(.*?)\n```", text, re.S)
    assert len(blocks) == 1, f"{card_path} has no single 'Load with transformers' snippet"
    assert blocks[0] == export_hf.TRANSFORMERS_SNIPPET
    return blocks[0]


@pytest.mark.parametrize("name,card", [("shipped judge", "MODEL_CARD.md"), ("visual_erm_sft", "README.md"),
                                       ("grpo", "README.md")])
def test_model_card_snippet_runs_as_written(exports, standard_route, name, card):
    path = exports[name]
    code = card_snippet(os.path.join(path, card)).replace('"PATH"', repr(path))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, f"{name}/{card}", "exec"), {})
    messages = [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (64, 64), "white")},
                                             {"type": "text", "text": "Describe the image."}]}]
    processor = Processor.from_pretrained(path)
    expected = processor.decode(jax_greedy(path, messages)[:32])
    assert printed.getvalue() == expected + "\n"


def test_export_holds_the_chat_template_and_processor_configs(exports):
    from policy.chat import CHAT_TEMPLATE

    for path in exports.values():
        with open(os.path.join(path, "tokenizer_config.json"), encoding="utf-8") as f:
            assert json.load(f)["chat_template"] == CHAT_TEMPLATE
        with open(os.path.join(path, "chat_template.jinja"), encoding="utf-8") as f:
            assert f.read() == CHAT_TEMPLATE
        with open(os.path.join(path, "preprocessor_config.json")) as f:
            assert json.load(f)["image_processor_type"] == "Qwen2VLImageProcessorPil"
        with open(os.path.join(path, "processor_config.json")) as f:
            assert json.load(f) == {"processor_class": "Qwen3VLProcessor"}


def test_tokenizer_renders_our_prompts(exports):
    """The tokenizer alone (no processor) renders the chat template as `policy.chat` does."""
    from transformers import AutoTokenizer

    from policy.chat import apply_chat_template

    messages = judge_pair() + [{"role": "assistant", "content": '{"errors": []}'}]
    for path in exports.values():
        tokenizer = AutoTokenizer.from_pretrained(path)
        assert tokenizer.apply_chat_template(messages, tokenize=False) == apply_chat_template(messages)
