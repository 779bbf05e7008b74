"""The Qwen3-VL (Instruct) chat template: one Jinja file, rendered here and shipped in every export.

`qwen3_vl_chat_template.jinja` (beside this file) is the template the Qwen team ships with
Qwen/Qwen3-VL-*-Instruct, byte for byte (see `qwen3_vl_chat_template.md`). This module renders it
under the same Jinja settings transformers uses (sandboxed, `trim_blocks`, `lstrip_blocks`, its
`tojson`), and `policy.export` writes the same text into each export's tokenizer config, so
`processor.apply_chat_template` in transformers builds exactly the prompts our `Processor` builds.
Messages are Hugging Face style dicts: `{"role": ..., "content": str | list[item]}`, where an item
is `{"type": "text", "text": ...}`, `{"type": "image", "image": <PIL|array>}` (also any item with
an `image` or `image_url` key) or a video item. Quirks of the template, kept because the model was
trained on them: no default system prompt, a system message only counts when it is the first
message, assistant turns carry no `<think>` block.
"""
from __future__ import annotations

import functools
import json
import pathlib
from collections.abc import Sequence
from typing import Any

TEMPLATE_FILE = pathlib.Path(__file__).with_name("qwen3_vl_chat_template.jinja")
CHAT_TEMPLATE = TEMPLATE_FILE.read_text(encoding="utf-8")
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
VIDEO_PLACEHOLDER = "<|vision_start|><|video_pad|><|vision_end|>"


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None,
            sort_keys: bool = False) -> str:
    """Hugging Face's `tojson` filter: plain json.dumps, no HTML escaping, unicode kept."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str):
    raise ValueError(f"chat template: {message}")


@functools.cache
def _compiled():
    """The template compiled once, in the environment transformers' `render_jinja_template` uses."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    return env.from_string(CHAT_TEMPLATE)


def is_image_item(item: dict) -> bool:
    return item.get("type") == "image" or "image" in item or "image_url" in item


def apply_chat_template(messages: Sequence[dict], *, add_generation_prompt: bool = False,
                        add_vision_id: bool = False, tools: Sequence[dict] | None = None) -> str:
    """One conversation -> prompt string: the Jinja template rendered as transformers renders it."""
    if not messages:
        raise ValueError("a conversation needs at least one message")
    return _compiled().render(messages=list(messages), add_generation_prompt=add_generation_prompt,
                              add_vision_id=add_vision_id, tools=list(tools) if tools else None)


def collect_images(messages: Sequence[dict]) -> list[Any]:
    """The image objects of a conversation's image items, in placeholder order.

    Items given by `image_url` (or a path string) are not loaded: no I/O or network here.
    """
    images = []
    for message in messages:
        content = message.get("content")
        if message["role"] not in ("user", "tool") or content is None or isinstance(content, str):
            continue
        for item in content:
            if is_image_item(item):
                image = item.get("image")
                if image is None or isinstance(image, str):
                    raise NotImplementedError(
                        "image items must carry the decoded image (PIL or uint8 array) under 'image'; "
                        "loading paths or URLs is left to the caller")
                images.append(image)
    return images
