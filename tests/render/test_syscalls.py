"""The task's seccomp filter names every call it means to deny, also those newer than libseccomp."""
import platform

import pytest

from render import svg, syscalls
from render.errors import RenderInputError


@pytest.mark.skipif(platform.machine() not in ("x86_64", "aarch64"), reason="numbers known for x86_64/aarch64")
def test_every_denied_call_resolves_to_a_number():
    assert syscalls.unresolved() == []
    for name in ("listmount", "statmount", "file_getattr", "file_setattr", "getxattrat", "io_setup", "vmsplice"):
        assert name in syscalls.DENIED_SYSCALLS and syscalls.syscall_number(name) is not None


def test_the_filter_builds():
    assert syscalls.seccomp_filter() is not None


@pytest.mark.parametrize("style", [
    "rect { fill: red }<x/>@import url('http://example.com/x.css');",
    "rect { fill: red }<x>y</x>rect { fill: url('file:///etc/passwd') }",
    "<x>rect { fill: url('file:///etc/passwd') }</x>",
])
def test_style_vetting_reads_every_text_node_of_style(style):
    code = f'<svg xmlns="http://www.w3.org/2000/svg"><style>{style}</style><rect width="4" height="4"/></svg>'
    with pytest.raises(RenderInputError) as caught:
        svg.parse_svg(code)
    assert caught.value.error.kind == "forbidden"


def test_no_denied_call_is_on_the_allowlist():
    assert syscalls.overlap() == []
