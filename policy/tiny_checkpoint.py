"""A complete tiny Qwen3-VL checkpoint directory, made locally: no downloads.

Tiny configs (CPU runs, tests) need what a real checkpoint directory has:
config.json + safetensors, a tokenizer, preprocessor_config.json. The 151,936
token Qwen vocabulary would dominate a tiny model, so we train a small
byte-level BPE on the run's own texts with `tokenizers`, keeping Qwen's special
tokens (chat turns, vision markers) so templates and processors work unchanged.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable

from policy.config import Qwen3VLConfig
from policy.hf_io import save_pretrained
from policy.hf_processor_files import preprocessor_config, write_processor_files
from policy.image_processor import ImageProcessor
from policy.model import init_model

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
    "<tool_response>", "</tool_response>", "<think>", "</think>",
)


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_dir: str):
    """Byte-level BPE over `texts` with Qwen's special tokens; saved as an HF tokenizer dir."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=[t for t in QWEN_SPECIAL_TOKENS if t not in ("<|im_end|>", "<|endoftext|>")],
    )
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def tiny_config(vocab_size: int, text_overrides: dict | None = None, special_ids: dict | None = None,
                vision_overrides: dict | None = None, **config_overrides) -> Qwen3VLConfig:
    """The config `build` writes for a tokenizer of `vocab_size` tokens (`launch.aot` sizes tiny runs
    with it before any tokenizer exists: the trainer puts Qwen's special tokens first, in order)."""
    ids = special_ids or {name: i for i, name in enumerate(QWEN_SPECIAL_TOKENS)}
    base = Qwen3VLConfig.tiny()
    text = type(base.text)(**{**base.text.__dict__, **(text_overrides or {}), "vocab_size": vocab_size})
    vision = type(base.vision)(**{**base.vision.__dict__, **(vision_overrides or {}),
                                  "out_hidden_size": text.hidden_size})
    return Qwen3VLConfig.tiny(
        text=text, vision=vision,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], **config_overrides,
    )


def build(out_dir: str, texts: Iterable[str], *, vocab_size: int = 1024, max_pixels: int = 64 * 64,
          seed: int = 0, text_overrides: dict | None = None, vision_overrides: dict | None = None,
          **config_overrides) -> Qwen3VLConfig:
    """Tokenizer + randomly initialised tiny model + preprocessor config in `out_dir`.

    `text_overrides` resizes the decoder (e.g. hidden_size, num_hidden_layers), `vision_overrides` the
    vision tower (hidden_size, intermediate_size, num_heads); the merger's output width follows the
    decoder's hidden size.
    """
    os.makedirs(out_dir, exist_ok=True)
    tokenizer = train_tokenizer(texts, vocab_size, out_dir)
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in QWEN_SPECIAL_TOKENS}
    config = tiny_config(len(tokenizer), text_overrides, ids, vision_overrides, **config_overrides)
    save_pretrained(config, init_model(config, seed), out_dir)
    vision = config.vision
    factor = vision.patch_size * vision.spatial_merge_size
    image = ImageProcessor(patch_size=vision.patch_size, temporal_patch_size=vision.temporal_patch_size,
                           merge_size=vision.spatial_merge_size, min_pixels=factor * factor * 4, max_pixels=max_pixels)
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump(preprocessor_config(image), f, indent=1)
    write_processor_files(out_dir)  # chat template + processor configs: loads with AutoProcessor
    return config
