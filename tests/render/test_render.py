"""Renderers through the sandboxed pool: pixels show what the code says, every typed error."""
import numpy as np
import pytest

import render
from render.errors import RenderError

HALF_RED = """
import matplotlib.pyplot as plt
fig = plt.figure()
ax = fig.add_axes([0, 0, 1, 1])
ax.bar([0.5], [1.0], width=1.0, color="red")
ax.set_xlim(0, 2); ax.set_ylim(0, 1); ax.axis("off")
"""
RANDOM_SCATTER = """
import random
import numpy as np
import matplotlib.pyplot as plt
plt.scatter(np.random.rand(50), np.random.rand(50), c=[random.random() for _ in range(50)])
plt.title("unseeded randomness is seeded by the sandbox")
plt.show()
"""


@pytest.fixture(scope="module")
def pool():
    with render.RenderPool(workers=2, timeout_s=20) as p:
        yield p


def pixels(result):
    assert result.error is None, result.error
    assert result.image.mode == "RGB"
    return np.asarray(result.image).astype(int)


def test_chart_red_bar_is_red_where_it_should_be(pool):
    img = pixels(pool.submit("chart", HALF_RED).result())
    assert img.shape == (480, 640, 3)  # default figure size at the fixed DPI
    assert (img[:, 5:315] == [255, 0, 0]).all()
    assert (img[:, 325:] == [255, 255, 255]).all()


@pytest.mark.parametrize(
    "ending",
    ["plt.show()", "plt.savefig('x.png')", "fig.savefig('/tmp/x.png', dpi=300)", "plt.savefig('x.png'); plt.close()",
     ""],
)
def test_chart_captured_whatever_the_script_does_with_it(pool, ending):
    reference = pixels(pool.submit("chart", HALF_RED).result())
    img = pixels(pool.submit("chart", HALF_RED + ending + "\n").result())
    np.testing.assert_array_equal(img, reference)


def test_chart_last_handed_over_figure_wins(pool):
    code = HALF_RED + "fig.savefig('a.png')\nplt.figure(); plt.plot([0, 1], [1, 0], color='blue')\n"
    img = pixels(pool.submit("chart", code).result())
    assert (img[:, 5:315] == [255, 0, 0]).all()  # the saved figure, not the later one


def test_same_code_same_bytes_across_two_pools(pool):
    codes = [RANDOM_SCATTER, HALF_RED, "| a | b |\n|---|--:|\n| 1 | 2 |"]
    kinds = ["chart", "chart", "table"]
    first = pool.map(kinds, codes)
    with render.RenderPool(workers=1) as other:
        second = other.map(kinds, codes)
    for a, b in zip(first, second):
        assert a.image.tobytes() == b.image.tobytes()


def test_table_colspan_spans_two_columns(pool):
    html = (
        '<table><tr><td colspan="2" style="background: rgb(255,0,0)">merged</td></tr>'
        '<tr><td style="background: rgb(0,0,255)">left cell</td>'
        '<td style="background: rgb(0,255,0)">right cell</td></tr></table>'
    )
    img = pixels(pool.submit("table", html).result())

    def columns_of(color):
        ys, xs = np.nonzero((img == color).all(axis=-1))
        return xs.min(), xs.max(), ys.min(), ys.max()

    red, blue, green = columns_of([255, 0, 0]), columns_of([0, 0, 255]), columns_of([0, 255, 0])
    assert abs(red[0] - blue[0]) <= 1 and abs(red[1] - green[1]) <= 1  # spans both columns
    assert blue[1] < green[0]  # two separate columns below it
    assert red[3] < blue[2]  # header row above


def test_markdown_table_matches_equivalent_html(pool):
    markdown = "| Name | Value |\n|:-----|------:|\n| alpha | 1.25 |\n| **beta** | 300 |"
    html = (
        "<table><thead><tr><th style=\"text-align:left\">Name</th>"
        "<th style=\"text-align:right\">Value</th></tr></thead>"
        "<tbody><tr><td style=\"text-align:left\">alpha</td><td style=\"text-align:right\">1.25</td></tr>"
        "<tr><td style=\"text-align:left\"><strong>beta</strong></td><td style=\"text-align:right\">300</td></tr>"
        "</tbody></table>"
    )
    md, ht = pool.map("table", [markdown, html])
    np.testing.assert_array_equal(pixels(md), pixels(ht))


def test_table_right_alignment_moves_text_right(pool):
    left = "| header text here |\n|:--|\n| 7 |"
    right = "| header text here |\n|--:|\n| 7 |"
    a, b = (pixels(r) for r in pool.map("table", [left, right]))
    assert a.shape == b.shape

    def ink_x(img):  # dark pixels in the lower (body) half
        body = img[img.shape[0] // 2 + 4 : -12, 12:-12]
        return np.nonzero((body < 100).all(axis=-1))[1].mean()

    assert ink_x(b) > ink_x(a) + 40


def test_svg_circle_is_where_cx_cy_say(pool):
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="80">'
           '<circle cx="30" cy="50" r="10" fill="#0000ff"/></svg>')
    img = pixels(pool.submit("svg", svg).result())
    assert img.shape == (80, 100, 3)
    ys, xs = np.nonzero((img == [0, 0, 255]).all(axis=-1))
    assert abs(xs.mean() - 29.5) < 0.5 and abs(ys.mean() - 49.5) < 0.5
    assert 250 < len(xs) < 330  # about pi * r^2 fully covered pixels


def test_svg_size_scales_the_drawing(pool):
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
           '<rect x="0" y="0" width="5" height="10" fill="black"/></svg>')
    img = pixels(pool.submit("svg", svg, size=(64, 32)).result())
    assert img.shape == (32, 64, 3)
    # preserveAspectRatio "xMidYMid meet": a 32x32 drawing centred at x=16..48, its left half black
    assert (img[:, 16:32] == 0).all()
    assert (img[:, :16] == 255).all() and (img[:, 32:] == 255).all()


@pytest.mark.parametrize(
    "kind, code, error, fragment",
    [
        ("chart", "import matplotlib.pyplot as plt\nwhile True:\n    pass\n", "timeout", "time limit"),
        ("chart", "x = bytearray(64 * 2**30)\n", "memory", "MemoryError"),
        ("chart", "import matplotlib.pyplot as plt\nplt.plot([1, 2]\n", "syntax", "line"),
        ("chart", "import matplotlib.pyplot as plt\nx = 1\ny = x / 0\n", "runtime",
         "ZeroDivisionError: division by zero (line 3: y = x / 0)"),
        ("chart", "import numpy as np\nx = np.arange(3)\n", "no_figure", "no matplotlib figure"),
        ("chart", "print(open('/etc/hostname').read())\n", "forbidden", "PermissionError"),
        ("chart", "import matplotlib.pyplot as plt\nplt.figure(figsize=(500, 500))\n", "too_large", "pixels"),
        ("chart", "x = 1\n" * 200_000, "too_large", "exceeds"),
        ("table", "just some text, no table", "bad_input", "no Markdown pipe table"),
        ("svg", "<svg xmlns='http://www.w3.org/2000/svg'><rect></svg>", "syntax", "malformed XML"),
        ("svg", "<html><body/></html>", "bad_input", "not <svg>"),
        ("svg", "<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink'>"
                "<image xlink:href='file:///etc/passwd'/></svg>", "forbidden", "external reference"),
        ("plot", "x", "bad_input", "unknown kind"),
    ],
)
def test_typed_errors(pool, kind, code, error, fragment):
    result = pool.submit(kind, code, timeout_s=3).result()
    assert result.image is None
    assert isinstance(result.error, RenderError)
    assert result.error.kind == error, result.error
    assert fragment in result.error.message


def test_bad_size_is_a_typed_error_without_a_fork(pool):
    result = pool.submit("svg", "<svg/>", size=(0, 10)).result()
    assert result.error.kind == "bad_input"


def test_render_function_uses_a_shared_sandboxed_worker():
    result = render.render("svg", '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4">'
                                  '<rect width="4" height="4" fill="red"/></svg>')
    assert (np.asarray(result.image) == [255, 0, 0]).all()


def test_sandbox_report_lists_active_protections():
    report = render.sandbox_report()
    assert set(report) >= set(render.sandbox.PROTECTIONS + render.sandbox.OPTIONAL_PROTECTIONS)
    assert all(report[name]["active"] for name in render.sandbox.PROTECTIONS), report
    assert report["memory_cgroup"]["detail"]  # on where the host delegates a cgroup v2, else why not


def test_render_error_rejects_unknown_kinds_and_truncates():
    with pytest.raises(ValueError):
        RenderError("oops", "x")
    assert len(RenderError("runtime", "x" * 1000).message) == 300
