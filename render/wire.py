"""What crosses a process boundary: the task's result frame, and zygote <-> pool control messages.

A task's answer is one frame on a pipe: a fixed binary header (JSON-header length, payload
length), a JSON header, then raw RGB bytes. It is read by the pool with a deadline and size
caps and validated completely (bounded JSON, a known shape, positive dimensions that match
the payload); anything else becomes a `runtime` error. No pickle from a task is ever loaded.

Control messages between a zygote and its pool are small JSON objects on a SOCK_SEQPACKET
socket (one message a packet), carrying file descriptors where a spare task is handed over.
They never carry a request or a result: those go straight between the pool and the task, so
the zygote, which forks every task, never holds another task's data.
"""
from __future__ import annotations

import json
import os
import select
import socket
import struct
import time
from typing import NamedTuple

from render.errors import ERROR_KINDS, RenderResult
from render.trace_schema import MAX_TRACE_BYTES, validate_trace

FRAME_HEADER = struct.Struct(">II")  # JSON-header length, payload length
MAX_HEADER = 4096 + MAX_TRACE_BYTES  # room for an optional chart trace
MAX_SIDE = 8192  # a chart is at most 4096x4096 px in area; no side beyond this
MAX_PAYLOAD = 4096 * 4096 * 3
MAX_MESSAGE = 1 << 16


def write_all(fd: int, data: bytes) -> None:
    data = memoryview(data)
    while data:
        data = data[os.write(fd, data):]


def write_frame(fd: int, header: dict, payload: bytes = b"") -> None:
    head = json.dumps(header).encode()
    if len(head) > MAX_HEADER:
        head = json.dumps({"ok": False, "kind": "too_large", "message": "the result header is too large"}).encode()
        payload = b""
    write_all(fd, FRAME_HEADER.pack(len(head), len(payload)) + head + payload)


def wait_for(fd: int, events: int, timeout_s: float | None) -> bool:
    """Whether `fd` became ready for `events` (select.POLLIN/POLLOUT) in time (poll: any fd number)."""
    poller = select.poll()
    poller.register(fd, events)
    return bool(poller.poll(None if timeout_s is None else max(0, int(timeout_s * 1000) + 1)))


def read_exact(fd: int, count: int, deadline: float) -> bytes | None:
    """`count` bytes from `fd` before `deadline` (monotonic), else None."""
    chunks, remaining = [], count
    while remaining:
        wait = deadline - time.monotonic()
        if wait <= 0 or not wait_for(fd, select.POLLIN, wait):
            return None
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class Frame(NamedTuple):
    """A task's answer as read: `header` None when no well-formed frame came; `oversized` when
    its payload was larger than the request allows (refused unread)."""

    header: dict | None
    payload: bytes
    timed_out: bool
    oversized: bool = False


def read_frame(fd: int, deadline: float, max_payload: int = MAX_PAYLOAD) -> Frame:
    sizes = read_exact(fd, FRAME_HEADER.size, deadline)
    if sizes is None:
        return Frame(None, b"", time.monotonic() >= deadline)
    head_len, payload_len = FRAME_HEADER.unpack(sizes)
    if head_len > MAX_HEADER or payload_len > MAX_PAYLOAD:
        return Frame(None, b"", False)
    if payload_len > max_payload:
        return Frame(None, b"", False, oversized=True)
    head = read_exact(fd, head_len, deadline)
    payload = read_exact(fd, payload_len, deadline) if payload_len else b""
    if head is None or payload is None:
        return Frame(None, b"", time.monotonic() >= deadline)
    header = loads_bounded(head)
    return Frame(header if isinstance(header, dict) else None, payload, False)


def loads_bounded(data: bytes):
    """JSON, or None for anything malformed, including nesting too deep to parse."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _dimension(value) -> bool:
    return type(value) is int and 0 < value <= MAX_SIDE


def to_result(header: dict, payload: bytes, seconds: float, fits=None) -> RenderResult:
    """Turn an untrusted frame header and payload into a RenderResult; anything off is an error.
    `fits(width, height)`: whether the request allows an image of that size (else `invalid_output`)."""
    from PIL import Image

    if header.get("ok") is True:
        height, width, trace = header.get("height"), header.get("width"), header.get("trace")
        if trace is not None and validate_trace(trace) is None:
            return RenderResult.failure("runtime", "the render task returned a malformed trace", seconds)
        if _dimension(height) and _dimension(width) and height * width * 3 == len(payload):
            if fits is not None and not fits(width, height):
                return RenderResult.failure(
                    "invalid_output", f"the render task returned a {width}x{height} image, "
                    "which is not the size the request asked for", seconds)
            return RenderResult(image=Image.frombytes("RGB", (width, height), payload), seconds=seconds, trace=trace)
        return RenderResult.failure("runtime", "the render task returned a malformed image", seconds)
    kind, message = header.get("kind"), header.get("message")
    if kind in ERROR_KINDS and isinstance(message, str) and message:
        return RenderResult.failure(kind, message, seconds)
    return RenderResult.failure("runtime", "the render task returned a malformed error", seconds)


# --- zygote <-> pool control messages ------------------------------------------------------


class Spare(NamedTuple):
    """A forked, jailed task waiting for its request, as the pool holds it."""

    pid: int
    workdir: str
    request_fd: int  # the pool writes the request here, then closes it
    result_fd: int  # the task's frame comes back here


def send_message(sock: socket.socket, message: dict, fds=()) -> None:
    socket.send_fds(sock, [json.dumps(message).encode()], list(fds))


def recv_message(sock: socket.socket, timeout_s: float | None) -> tuple[dict, list[int]]:
    """One message and the descriptors that came with it; EOFError when the peer is gone,
    TimeoutError when nothing came in time."""
    if not wait_for(sock.fileno(), select.POLLIN, timeout_s):
        raise TimeoutError("no message from the render worker in time")
    data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 4)
    if not data:
        for fd in fds:
            os.close(fd)
        raise EOFError("render worker connection closed")
    message = loads_bounded(data)
    if not isinstance(message, dict):
        for fd in fds:
            os.close(fd)
        raise EOFError("malformed message from the render worker")
    return message, fds
