"""Code extraction from completions: which block wins, fallbacks, SVG repair, hostile input."""
import xml.etree.ElementTree as ET

import pytest

import render
from rl.extract import extract_code, fenced_blocks, repair_svg

SVG_NS = "http://www.w3.org/2000/svg"
FULL_SVG = (f'<svg xmlns="{SVG_NS}" width="60" height="40" viewBox="0 0 60 40">'
            '<rect x="0" y="0" width="30" height="40" fill="#ff0000"/>'
            '<g><circle cx="45" cy="20" r="10" fill="#0000ff"/></g></svg>')
# The same document cut off by the token limit inside an attribute of a third shape.
TRUNCATED_SVG = FULL_SVG[: FULL_SVG.index("</g>")] + '<rect x="50" y="0" width="1'


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2, timeout_s=20) as p:
        yield p


# ---------------------------------------------------------------- fenced blocks


def test_last_python_block_wins_over_drafts():
    text = ("Draft:\n```python\nprint('draft')\n```\n"
            "Final answer:\n```py\nimport matplotlib.pyplot as plt\nplt.plot([1])\n```\nDone.")
    got = extract_code("chart", text)
    assert got.ok and got.problem is None
    assert got.code == "import matplotlib.pyplot as plt\nplt.plot([1])"


def test_other_languages_are_skipped_but_named_language_is_taken_as_written():
    text = "```json\n{\"a\": 1}\n```\n```python\nthis is not valid python (\n```\n```text\nnotes\n```"
    assert extract_code("chart", text).code == "this is not valid python ("


def test_nested_fences_longer_outer_fence_holds_inner_fences():
    text = "````markdown\nExample answer:\n```python\nimport matplotlib.pyplot as plt\nplt.bar([1], [2])\n```\n````\n"
    blocks = fenced_blocks(text)
    assert [b.language for b in blocks] == ["markdown"]  # one top-level block: the inner ``` does not close it
    assert "```python" in blocks[0].content
    assert extract_code("chart", text).code == "import matplotlib.pyplot as plt\nplt.bar([1], [2])"


def test_tilde_fence_is_not_closed_by_backticks():
    text = "~~~python\ns = '''\n```\n'''\nimport matplotlib\n~~~"
    assert extract_code("chart", text).code == "s = '''\n```\n'''\nimport matplotlib"


def test_unlabelled_block_counts_only_with_matching_content():
    assert extract_code("chart", "```\nimport matplotlib.pyplot as plt\n```").code == "import matplotlib.pyplot as plt"
    assert extract_code("chart", "```\nprint(1)\n```").problem == "no chart code block"
    assert extract_code("table", "```\n| a | b |\n|---|---|\n| 1 | 2 |\n```").code == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert extract_code("table", "```\nhello\n```").problem == "no table code block"


def test_unclosed_fence_runs_to_the_end():
    got = extract_code("chart", "Sure:\n```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2")
    assert got.code == "import matplotlib.pyplot as plt\nplt.plot([1, 2"


def test_no_code_at_all():
    got = extract_code("chart", "I cannot draw this chart, sorry.")
    assert got.code is None and got.problem == "no code block"
    assert extract_code("svg", "").problem == "no code block"


def test_think_blocks_and_crlf():
    text = ("<think>\n```python\nimport matplotlib  # draft\n```\n</think>\r\n"
            "```python\r\nimport matplotlib.pyplot as plt\r\n```\r\n")
    assert extract_code("chart", text).code == "import matplotlib.pyplot as plt"
    assert extract_code("chart", "<think>still thinking ```python\nx").problem == "no code block"


def test_bad_arguments_never_raise():
    assert extract_code("video", "x").problem.startswith("unknown kind")
    assert extract_code("chart", None).problem == "completion is NoneType, not str"


# ---------------------------------------------------------------- tables


def test_table_blocks_markdown_and_html_labels():
    md = "| a | b |\n|---|--:|\n| 1 | 2 |"
    html = "<table><tr><td>x</td></tr></table>"
    assert extract_code("table", f"```md\n{md}\n```").code == md
    assert extract_code("table", f"```markdown\n{md}\n```\n```html\n{html}\n```").code == html
    assert extract_code("table", f"```html\n{html}\n```\nand also\n```markdown\n{md}\n```").code == md


def test_table_free_text_pipe_run_and_html_span_last_wins():
    text = "The table:\n\n  | Name | Qty |\n  |:--|--:|\n  | nut | 3 |\n  | bolt | 12 |\n\nHope it helps | really."
    assert extract_code("table", text).code == "| Name | Qty |\n|:--|--:|\n| nut | 3 |\n| bolt | 12 |"
    html = "<table><tr><td>late</td></tr></table>"
    assert extract_code("table", text + "\nOr in HTML: " + html + " ok").code == html
    nested = "<table><tr><td><table><tr><td>in</td></tr></table></td></tr></table>"
    assert extract_code("table", f"x {nested} y").code == nested  # the outer element, not the inner one
    assert extract_code("table", "a | b\nno delimiter row here").problem == "no code block"


# ---------------------------------------------------------------- svg


def test_svg_block_labels_and_free_text():
    assert extract_code("svg", f"```svg\n{FULL_SVG}\n```").code == FULL_SVG
    assert extract_code("svg", f"```xml\n<?xml version='1.0'?>\n{FULL_SVG}\n```").code == FULL_SVG
    assert extract_code("svg", f"```html\n<html><body>{FULL_SVG}</body></html>\n```").code == FULL_SVG
    assert extract_code("svg", f"First <svg width='1' height='1'></svg> then {FULL_SVG} done.").code == FULL_SVG
    assert extract_code("svg", "```xml\n<note/>\n```").problem == "no svg code block"
    assert extract_code("svg", "```svg\nnot svg at all\n```").code == "not svg at all"  # labelled: as written


def test_nested_svg_elements_keep_the_outer_one():
    outer = (f'<svg xmlns="{SVG_NS}" width="10" height="10">'
             '<svg x="1" width="5" height="5"><rect width="1" height="1"/></svg></svg>')
    assert extract_code("svg", f"Here: {outer}").code == outer


def test_truncated_svg_is_repaired_by_the_xml_parser():
    got = extract_code("svg", f"```svg\n{TRUNCATED_SVG}")
    assert got.note == "repaired truncated SVG: closed 2 open element(s)"
    # The complete elements survive, the half-written rect is dropped, the open <g> and <svg> closed.
    assert got.code == (f'<svg width="60" height="40" viewBox="0 0 60 40" xmlns="{SVG_NS}">'
                        '<rect x="0" y="0" width="30" height="40" fill="#ff0000" />'
                        '<g><circle cx="45" cy="20" r="10" fill="#0000ff" /></g></svg>')
    ET.fromstring(got.code)  # well formed
    # Free text works the same way.
    assert extract_code("svg", "Answer: " + TRUNCATED_SVG).code == got.code


def test_svg_repair_edge_cases():
    assert repair_svg(FULL_SVG) == (FULL_SVG, "")  # complete: unchanged
    mid_error = FULL_SVG.replace("<g>", "<g><oops></g>")
    assert extract_code("svg", mid_error).code == mid_error  # a real syntax error is the renderer's to report
    assert extract_code("svg", "<svg width='3").problem == "truncated SVG: the root element's start tag never finished"
    entity = "<svg><!ENTITY a 'b'><text>&a;"
    assert extract_code("svg", entity).code == entity  # entities are never expanded here
    deep = "<svg>" + "<g>" * 5000
    assert extract_code("svg", deep).code == deep  # too deep to serialise: left as is
    xlink = f'<svg xmlns="{SVG_NS}" xmlns:xlink="http://www.w3.org/1999/xlink"><use xlink:href="#a"/><text>cut'
    repaired = extract_code("svg", xlink).code
    assert 'xlink:href="#a"' in repaired and "ns0" not in repaired and "<text" in repaired


def test_repaired_svg_renders_and_the_truncated_text_does_not(pool):
    repaired = extract_code("svg", f"```svg\n{TRUNCATED_SVG}").code
    fixed, broken, full = pool.map(["svg"] * 3, [repaired, TRUNCATED_SVG, FULL_SVG])
    assert broken.error is not None and broken.error.kind == "syntax"
    assert fixed.error is None and fixed.image.size == (60, 40)
    assert fixed.image.getpixel((10, 20)) == (255, 0, 0)
    assert fixed.image.getpixel((45, 20)) == (0, 0, 255)
    assert fixed.image.tobytes() == full.image.tobytes()  # the cut-off shape had drawn nothing yet


# ---------------------------------------------------------------- hostile input


HOSTILE = [
    "`" * 2_000_000,
    "```\n" * 300_000,
    "~~~\n```python\n" * 100_000,
    "<svg " * 300_000,
    "<svg>" * 300_000,
    "</svg>" * 300_000,
    "<svg><g>" + "<g>" * 200_000,
    "|" * 2_000_000,
    "|-|\n" * 300_000,
    "a | b\n" * 300_000,
    "<table>" * 300_000,
    "<think>" * 200_000,
    "x" * 3_000_000,
]


@pytest.mark.timeout(300)  # a hang guard, not a speed claim: backtracking on MBs of input never finishes
@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_hostile_inputs_finish_and_never_raise(index):
    text = HOSTILE[index]
    for kind in ("chart", "table", "svg"):
        got = extract_code(kind, text)
        assert (got.code is None) == (got.problem is not None)
        assert got.problem is None or not got.problem.startswith("internal error")
