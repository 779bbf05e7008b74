"""What size of image a request allows: exactly the requested size, else the renderer's maximum."""
import pytest

from render.request import MAX_CHART_PIXELS, MAX_SVG_SIDE, TABLE_PAGE_PX, max_output_bytes, output_fits


@pytest.mark.parametrize("kind", ["chart", "table", "svg"])
def test_a_requested_size_is_the_only_size_allowed(kind):
    assert output_fits(kind, (64, 48), 64, 48)
    assert not output_fits(kind, (64, 48), 48, 64)
    assert not output_fits(kind, (64, 64), 4096, 4096)
    assert max_output_bytes(kind, (64, 48)) == 64 * 48 * 3


def test_open_sizes_stop_at_each_renderers_maximum():
    assert output_fits("svg", None, MAX_SVG_SIDE, MAX_SVG_SIDE) and not output_fits("svg", None, MAX_SVG_SIDE + 1, 1)
    assert output_fits("table", None, *TABLE_PAGE_PX) and not output_fits("table", None, TABLE_PAGE_PX[0] + 1, 10)
    assert output_fits("chart", None, 8192, 2048) and not output_fits("chart", None, 4097, 4096)
    assert max_output_bytes("chart", None) == MAX_CHART_PIXELS * 3
