"""Frames from tasks and clean-up of what tasks leave: hostile shapes never crash the reader."""
import json
import os
import tempfile
import time

from render import cleanup, wire


def frame_bytes(header: bytes, payload: bytes = b"") -> bytes:
    return wire.FRAME_HEADER.pack(len(header), len(payload)) + header + payload


def read(data: bytes) -> wire.Frame:
    with tempfile.TemporaryFile() as handle:  # a file, not a pipe: any size without a writer thread
        handle.write(data)
        handle.seek(0)
        return wire.read_frame(handle.fileno(), time.monotonic() + 5)


def test_deeply_nested_header_is_no_frame_not_a_crash():
    frame = read(frame_bytes(b"[" * 60_000 + b"]" * 60_000))
    assert frame.header is None and not frame.timed_out


def test_oversized_header_is_refused_before_reading_it():
    data = wire.FRAME_HEADER.pack(wire.MAX_HEADER + 1, 0)
    assert read(data).header is None


def test_dimensions_must_be_positive_ints_that_match_the_payload():
    for height, width, payload in ((-1, -1, b"abc"), (True, True, b"abc"), (0, 5, b""), (2, 2, b"x" * 11),
                                   (1.0, 1, b"abc"), (9000, 1, b"x" * 27000)):
        result = wire.to_result({"ok": True, "height": height, "width": width}, payload, 0.1)
        assert result.error is not None and result.error.kind == "runtime", (height, width)
    good = wire.to_result({"ok": True, "height": 1, "width": 2}, b"\x00" * 6, 0.1)
    assert good.error is None and good.image.size == (2, 1)


def test_errors_need_a_known_kind_and_a_message():
    result = wire.to_result({"ok": False, "kind": "escape", "message": "x"}, b"", 0)
    assert result.error.message.startswith("the render")
    assert wire.to_result({"ok": False, "kind": "syntax", "message": ""}, b"", 0).error.kind == "runtime"
    assert wire.to_result({"ok": False, "kind": "syntax", "message": "bad"}, b"", 0).error.kind == "syntax"


def test_round_trip_of_a_written_frame():
    read_fd, write_fd = os.pipe()
    wire.write_frame(write_fd, {"ok": True, "height": 1, "width": 1}, b"\x01\x02\x03")
    os.close(write_fd)
    frame = wire.read_frame(read_fd, time.monotonic() + 5)
    os.close(read_fd)
    assert frame.header == {"ok": True, "height": 1, "width": 1} and frame.payload == b"\x01\x02\x03"


def make_deep_tree(root, depth: int) -> None:
    here = os.getcwd()
    os.chdir(root)
    try:
        for index in range(depth):
            os.mkdir("d")
            os.chdir("d")
            open(f"f{index % 3}", "w").close()
        os.symlink("/etc/passwd", "link")
        os.chmod(".", 0o000)
    finally:
        os.chdir(here)


def test_remove_tree_deeper_than_path_max_within_budget(tmp_path):
    (tmp_path / "task").mkdir()
    make_deep_tree(tmp_path / "task", 2500)  # a path of 5000+ chars, beyond PATH_MAX
    assert cleanup.remove_tree(str(tmp_path / "task"), 0.0) is False  # budget spent: stops, raises nothing
    assert cleanup.remove_tree(str(tmp_path / "task"), 60.0) is True
    assert not (tmp_path / "task").exists() and os.path.exists("/etc/passwd")


def test_stale_bases_are_those_of_dead_zygotes(tmp_path):
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    (tmp_path / f"{cleanup.BASE_PREFIX}{dead}-abc").mkdir()
    (tmp_path / f"{cleanup.BASE_PREFIX}{os.getpid()}-abc").mkdir()
    (tmp_path / "unrelated").mkdir()
    assert cleanup.stale_bases(str(tmp_path)) == [str(tmp_path / f"{cleanup.BASE_PREFIX}{dead}-abc")]


def test_messages_carry_descriptors():
    import socket

    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    read_fd, write_fd = os.pipe()
    wire.send_message(left, {"spare": 7, "workdir": "/x"}, (read_fd, write_fd))
    message, fds = wire.recv_message(right, 5)
    assert message == {"spare": 7, "workdir": "/x"} and len(fds) == 2
    os.write(fds[1], b"hi")
    assert os.read(fds[0], 2) == b"hi"
    for fd in (*fds, read_fd, write_fd):
        os.close(fd)
    left.send(json.dumps([1]).encode())  # not an object: refused
    try:
        wire.recv_message(right, 5)
        raise AssertionError("a malformed message was accepted")
    except EOFError:
        pass
    left.close()
    right.close()


def test_a_payload_larger_than_the_request_allows_is_refused_unread():
    data = frame_bytes(json.dumps({"ok": True, "height": 64, "width": 64}).encode(), b"\x00" * (64 * 64 * 3))
    with tempfile.TemporaryFile() as handle:
        handle.write(data)
        handle.seek(0)
        frame = wire.read_frame(handle.fileno(), time.monotonic() + 5, max_payload=32 * 32 * 3)
    assert frame.header is None and frame.oversized and frame.payload == b""


def test_an_image_of_another_size_than_requested_is_invalid_output():
    def fits(width, height):
        return (width, height) == (2, 2)

    wrong = wire.to_result({"ok": True, "height": 1, "width": 4}, b"\x00" * 12, 0.1, fits)
    assert wrong.error.kind == "invalid_output" and "4x1" in wrong.error.message
    right = wire.to_result({"ok": True, "height": 2, "width": 2}, b"\x00" * 12, 0.1, fits)
    assert right.error is None and right.image.size == (2, 2)
