"""The Qwen3-VL (Instruct) chat template, written in Python.

Renders the same string as the Jinja `chat_template` shipped with Qwen/Qwen3-VL-*-Instruct (test
fixture `tests/policy/fixtures/qwen3_vl_chat_template.jinja`), without a Jinja sandbox on the
hot path. Messages are Hugging Face style dicts: `{"role": ..., "content": str | list[item]}`,
where an item is `{"type": "text", "text": ...}`, `{"type": "image", "image": <PIL|array>}` (also
any item with an `image` or `image_url` key) or a video item. Quirks kept on purpose, because the
model was trained on them: there is no default system prompt, a system message is only rendered
when it is the first message, and assistant turns carry no `<think>` block.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
VIDEO_PLACEHOLDER = "<|vision_start|><|video_pad|><|vision_end|>"
_TOOLS_HEADER = ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                 "You are provided with function signatures within <tools></tools> XML tags:\n<tools>")
_TOOLS_FOOTER = ("\n</tools>\n\nFor each function call, return a json object with function name and arguments "
                 "within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
                 "\"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n")


def _tojson(value: Any) -> str:
    """Hugging Face's `tojson` filter: plain json.dumps, no HTML escaping, unicode kept."""
    return json.dumps(value, ensure_ascii=False)


def is_image_item(item: dict) -> bool:
    return item.get("type") == "image" or "image" in item or "image_url" in item


def is_video_item(item: dict) -> bool:
    return item.get("type") == "video" or "video" in item


def _text_only(content: Any) -> str:
    """System/assistant content: a string, or the concatenated `text` of its items."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(item["text"]) for item in content if "text" in item)


class _Counter:
    def __init__(self):
        self.images = 0
        self.videos = 0


def _media_content(content: Any, counter: _Counter, add_vision_id: bool) -> str:
    """User/tool content: text, and one placeholder per image or video item."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    out = []
    for item in content:
        if is_image_item(item):
            counter.images += 1
            out.append((f"Picture {counter.images}: " if add_vision_id else "") + IMAGE_PLACEHOLDER)
        elif is_video_item(item):
            counter.videos += 1
            out.append((f"Video {counter.videos}: " if add_vision_id else "") + VIDEO_PLACEHOLDER)
        elif "text" in item:
            out.append(str(item["text"]))
    return "".join(out)


def _tool_calls(message: dict) -> str:
    out = []
    for k, call in enumerate(message.get("tool_calls") or []):
        if k > 0 or message.get("content"):
            out.append("\n")
        if call.get("function"):
            call = call["function"]
        args = call.get("arguments")
        args = args if isinstance(args, str) else _tojson(args)
        out.append('<tool_call>\n{"name": "' + str(call["name"]) + '", "arguments": ' + args + "}\n</tool_call>")
    return "".join(out)


def apply_chat_template(messages: Sequence[dict], *, add_generation_prompt: bool = False,
                        add_vision_id: bool = False, tools: Sequence[dict] | None = None) -> str:
    """One conversation -> prompt string, identical to the Qwen3-VL Jinja template's output."""
    if not messages:
        raise ValueError("a conversation needs at least one message")
    out = []
    first_system = messages[0]["role"] == "system"
    if tools:
        out.append("<|im_start|>system\n")
        if first_system:
            out.append(_text_only(messages[0]["content"]) + "\n\n")
        out.append(_TOOLS_HEADER)
        out.extend("\n" + _tojson(tool) for tool in tools)
        out.append(_TOOLS_FOOTER)
    elif first_system:
        out.append("<|im_start|>system\n" + _text_only(messages[0]["content"]) + "<|im_end|>\n")
    counter = _Counter()
    for i, message in enumerate(messages):
        role, content = message["role"], message.get("content")
        if role == "user":
            out.append("<|im_start|>user\n" + _media_content(content, counter, add_vision_id) + "<|im_end|>\n")
        elif role == "assistant":
            out.append("<|im_start|>assistant\n" + _text_only(content) + _tool_calls(message) + "<|im_end|>\n")
        elif role == "tool":
            if i == 0 or messages[i - 1]["role"] != "tool":
                out.append("<|im_start|>user")
            out.append("\n<tool_response>\n" + _media_content(content, counter, add_vision_id)
                       + "\n</tool_response>")
            if i == len(messages) - 1 or messages[i + 1]["role"] != "tool":
                out.append("<|im_end|>\n")
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n")
    return "".join(out)


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
