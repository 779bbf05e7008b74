"""The files beside the weights that make a directory load the standard transformers way.

`AutoProcessor.from_pretrained(DIR)` + `processor.apply_chat_template(...)` +
`Qwen3VLForConditionalGeneration.from_pretrained(DIR).generate(**inputs)` must give the prompts,
pixels and tokens of our `Processor` and `Sampler`. That needs: the chat template (our one Jinja
source, `policy.chat.CHAT_TEMPLATE`) in the tokenizer config and as `chat_template.jinja` (which the
processor reads); an image processor config naming the PIL backend (`Qwen2VLImageProcessorPil`, the
one our `ImageProcessor` matches bit for bit, and the one that needs no torchvision); a video
processor config with the same patch geometry; and `processor_config.json` naming `Qwen3VLProcessor`,
whose outputs include the `mm_token_type_ids` that Qwen3-VL's `generate` needs to place the image
features.
"""
from __future__ import annotations

import json
import os

from policy.chat import CHAT_TEMPLATE
from policy.image_processor import ImageProcessor

PROCESSOR_CLASS = "Qwen3VLProcessor"
IMAGE_PROCESSOR_TYPE = "Qwen2VLImageProcessorPil"
VIDEO_PROCESSOR_TYPE = "Qwen3VLVideoProcessor"
TOKENIZER_CONFIG = "tokenizer_config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"


def preprocessor_config(image: ImageProcessor) -> dict:
    """`preprocessor_config.json` for `image` (the settings transformers' Qwen2-VL image processor reads)."""
    if image.max_side is not None:
        raise ValueError(f"max_side={image.max_side} has no transformers equivalent; export without it")
    return {
        "image_processor_type": IMAGE_PROCESSOR_TYPE, "processor_class": PROCESSOR_CLASS,
        "patch_size": image.patch_size, "temporal_patch_size": image.temporal_patch_size,
        "merge_size": image.merge_size, "size": {"shortest_edge": image.min_pixels, "longest_edge": image.max_pixels},
        "image_mean": list(image.image_mean), "image_std": list(image.image_std),
        "rescale_factor": image.rescale_factor, "resample": image.resample, "do_resize": True,
        "do_rescale": image.do_rescale, "do_normalize": image.do_normalize, "do_convert_rgb": True,
    }


def video_preprocessor_config(image: ImageProcessor) -> dict:
    """`video_preprocessor_config.json`: Qwen3-VL's video processor with the image patch geometry."""
    return {
        "video_processor_type": VIDEO_PROCESSOR_TYPE, "processor_class": PROCESSOR_CLASS,
        "patch_size": image.patch_size, "temporal_patch_size": image.temporal_patch_size,
        "merge_size": image.merge_size, "image_mean": list(image.image_mean), "image_std": list(image.image_std),
    }


def _write_json(path: str, value: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_processor_files(directory: str) -> list[str]:
    """Add the chat template and processor configs to a directory that holds a tokenizer.

    The image settings are the directory's own (`ImageProcessor.from_pretrained`: its
    preprocessor_config.json, else Qwen3-VL's defaults). Returns the names written.
    """
    tokenizer_config = os.path.join(directory, TOKENIZER_CONFIG)
    if not os.path.exists(tokenizer_config):
        raise FileNotFoundError(f"{tokenizer_config} is missing: the directory has no tokenizer to attach "
                                "the chat template to")
    with open(tokenizer_config, encoding="utf-8") as f:
        tokenizer = json.load(f)
    tokenizer.update(chat_template=CHAT_TEMPLATE, processor_class=PROCESSOR_CLASS)
    _write_json(tokenizer_config, tokenizer)
    with open(os.path.join(directory, CHAT_TEMPLATE_FILE), "w", encoding="utf-8") as f:
        f.write(CHAT_TEMPLATE)
    image = ImageProcessor.from_pretrained(directory)
    _write_json(os.path.join(directory, "preprocessor_config.json"), preprocessor_config(image))
    _write_json(os.path.join(directory, "video_preprocessor_config.json"), video_preprocessor_config(image))
    _write_json(os.path.join(directory, "processor_config.json"), {"processor_class": PROCESSOR_CLASS})
    return [TOKENIZER_CONFIG, CHAT_TEMPLATE_FILE, "preprocessor_config.json", "video_preprocessor_config.json",
            "processor_config.json"]


__all__ = ["CHAT_TEMPLATE_FILE", "IMAGE_PROCESSOR_TYPE", "PROCESSOR_CLASS", "preprocessor_config",
           "video_preprocessor_config", "write_processor_files"]
