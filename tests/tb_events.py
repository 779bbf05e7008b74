"""Read TensorBoard event files (local or gs://) without TensorFlow: (step, tag, kind) of every summary value."""
import struct

from tensorboardX.proto import event_pb2

from policy import paths


def records(data: bytes):
    """The payloads of a TFRecord file (length, crc, payload, crc)."""
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        yield data[offset + 12:offset + 12 + length]
        offset += 12 + length + 4


def summary_values(tb_dir: str) -> list[tuple[int, str, str]]:
    """(step, tag, "scalar" | "image" | "text") of every value in every event file of `tb_dir`."""
    out = []
    for name in paths.listdir(tb_dir):
        if not name.startswith("events.out.tfevents"):
            continue
        for payload in records(paths.read_bytes(paths.join(tb_dir, name))):
            event = event_pb2.Event.FromString(payload)
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                kind = {"simple_value": "scalar", "image": "image"}.get(kind, "text" if value.metadata.plugin_data
                                                                          .plugin_name == "text" else kind)
                out.append((event.step, value.tag, kind))
    return out
