"""Every prompt Visual-ERM and the policy see, in one file.

Judgement prompts show the reference image first and the rendered candidate
second, name the kind's categories and the severity scale, and ask for the JSON
critique that `visual_erm.schema.parse_critique` reads.
"""
from __future__ import annotations

from visual_erm.schema import CATEGORIES

SEVERITY_SCALE = "1 = minor (barely visible), 2 = moderate (clearly visible), 3 = major (changes what the image shows)"

_SUBJECT = {"chart": "chart", "table": "table", "svg": "SVG graphic"}
_CATEGORY_HINTS = {
    "structure_error": "chart type, layout, missing or extra elements",
    "data_error": "data values, series, counts, proportions",
    "text_error": "titles, labels, legend entries, cell text, typos",
    "style_error": "colours, line styles, markers, fonts, sizes",
    "layout_error": "rows, columns, merged cells, alignment, order",
    "numeric_error": "numbers in cells",
    "shape_error": "shape geometry: position, size, rotation, path",
    "text_symbol_error": "text and symbols drawn in the graphic",
}

_KIND_HINTS = {"svg": {"structure_error": "missing, extra or regrouped elements"}}


def judge_prompt(kind: str) -> str:
    """The instruction that follows the two images in the judge's user turn."""
    if kind not in CATEGORIES:
        raise ValueError(f"unknown kind {kind!r}")
    hints = dict(_CATEGORY_HINTS, **_KIND_HINTS.get(kind, {}))
    categories = "\n".join(f"- {name}: {hints[name]}" for name in CATEGORIES[kind])
    return (
        f"The first image is the reference {_SUBJECT[kind]}. "
        f"The second image is a rendering of code written to reproduce it.\n"
        f"List every visual discrepancy between the second image and the reference.\n"
        f"Categories:\n{categories}\n"
        f"Severity: {SEVERITY_SCALE}.\n"
        'Answer with JSON only: {"errors": [{"category": ..., "severity": ..., "location": ..., '
        '"description": ...}]}. If the images match, answer {"errors": []}.'
    )


def judge_messages(kind: str, reference, candidate) -> list[dict]:
    """Chat messages for one judgement (images as PIL objects)."""
    return [{"role": "user", "content": [
        {"type": "image", "image": reference},
        {"type": "image", "image": candidate},
        {"type": "text", "text": judge_prompt(kind)},
    ]}]


_CODE_LANGUAGE = {"chart": "python", "table": "markdown", "svg": "svg"}
_TASK = {
    "chart": "Write matplotlib Python code that reproduces this chart exactly.",
    "table": "Write this table as a Markdown table (use HTML only if it has merged cells).",
    "svg": "Write SVG code that reproduces this image exactly.",
}


def policy_prompt(kind: str) -> str:
    """The vision-to-code instruction under the reference image."""
    return f"{_TASK[kind]} Answer with one ```{_CODE_LANGUAGE[kind]} code block."


def revision_prompt(kind: str, previous_code: str, feedback: str) -> str:
    """Reflection and revision: the previous answer and the judge's critique (or render error)."""
    return (
        f"{_TASK[kind]}\nYour previous answer was:\n```{_CODE_LANGUAGE[kind]}\n{previous_code}\n```\n"
        f"A reviewer compared its rendering with the image and found:\n{feedback}\n"
        f"Fix every problem and answer with one corrected ```{_CODE_LANGUAGE[kind]} code block."
    )


def code_language(kind: str) -> str:
    return _CODE_LANGUAGE[kind]
