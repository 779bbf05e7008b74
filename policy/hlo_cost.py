"""FLOPs and HBM bytes of a compiled program, read from its optimized HLO with every loop counted.

Why not XLA's cost analysis alone: it counts a while loop's body once, so a model with scanned layers
(or a decode loop) is undercounted by the trip count, and it leaves out Pallas kernels (custom calls).
Here each instruction is weighted by the trip counts of the loops around it: XLA's `known_trip_count`
where it knows one, else the next of the caller's `loop_trips` (the worst-case iterations of
data-dependent loops, in the order the program runs them: the decode phases).

FLOPs are the matrix products (dot, convolution, splash kernels via
`policy.attention.splash_kernel_flops`, other Pallas kernels by the cost estimate they were built with);
elementwise work is memory-bound and shows in the bytes.
Bytes are what each top-level instruction (a fusion, a collective, a copy, a custom call) reads and
writes in HBM: its operands and results, except that an operand a fusion only slices counts its slices,
and an in-place dynamic-update-slice counts its update (scanned weights are read a layer at a time, a
KV cache is written a token at a time).
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator, Sequence

from policy.attention import splash_kernel_flops

_BYTES = {"pred": 1, "s4": 0.5, "u4": 0.5, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4,
          "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16}
_ARRAY = re.compile(r"\b(pred|[su]4|[su]8|[su]16|[su]32|[su]64|f16|bf16|f32|f64|c64|c128|f8\w*)\[([\d,]*)\]")
_HEADER = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s*\(.*\)\s*->\s*.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_FREE = {"parameter", "constant", "tuple", "get-tuple-element", "bitcast", "after-all", "partition-id",
         "replica-id", "opt-barrier", "copy-start", "copy-done", "add-dependency", "iota"}
_SLICING = {"dynamic-slice", "slice", "gather"}


class HloParseError(ValueError):
    """The HLO text is not what this reader understands (or a loop's trip count is unknown)."""


@dataclasses.dataclass
class Instruction:
    name: str
    shape: str  # result type text, e.g. "f32[2,3]{1,0}" or a tuple "(f32[2]{0}, s32[])"
    opcode: str
    operands: list[str]
    args: str  # the text between the opcode's parentheses (a parameter's index)
    attrs: str

    def called(self, key: str) -> list[str]:
        """Computations named by attribute `key` (calls=, body=, branch_computations={...})."""
        m = re.search(rf"\b{key}=(\{{[^}}]*\}}|%?[\w.\-]+)", self.attrs)
        return [] if not m else re.findall(r"%?([\w.\-]+)", m.group(1))


@dataclasses.dataclass
class Cost:
    flops: float = 0.0
    bytes: float = 0.0

    def __iadd__(self, other: Cost) -> Cost:
        self.flops += other.flops
        self.bytes += other.bytes
        return self

    def scaled(self, factor: float) -> Cost:
        return Cost(self.flops * factor, self.bytes * factor)


def array_dims(shape: str) -> list[tuple[str, tuple[int, ...]]]:
    """[(dtype, dims)] of every array in a type text (a tuple gives several)."""
    return [(t, tuple(int(d) for d in dims.split(",") if d)) for t, dims in _ARRAY.findall(shape)]


def shape_bytes(shape: str) -> float:
    return sum(_BYTES.get(t, 1) * math.prod(d) for t, d in array_dims(shape))


def _split_top(text: str, open_: str = "(", close: str = ")") -> tuple[str, str]:
    """(inside of the bracket group `text` starts with, the rest after it)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == open_
        depth -= ch == close
        if depth == 0:
            return text[1:i], text[i + 1:]
    raise HloParseError(f"unbalanced {open_}{close} in {text[:80]!r}")


def _parse_instruction(line: str) -> Instruction | None:
    m = _INSTRUCTION.match(line)
    if not m:
        return None
    name, rest = m.groups()
    rest = rest.strip()
    if rest.startswith("("):
        inner, rest = _split_top(rest)
        shape = f"({inner})"
    else:
        shape, _, rest = rest.partition(" ")
    op = re.match(r"\s*([\w\-]+)\(", rest)
    if not op:
        return None
    args, attrs = _split_top(rest[op.end() - 1:])
    operands = re.findall(r"%([\w.\-]+)", args)
    return Instruction(name, shape, op.group(1), operands, args.strip(), attrs)


def parse_module(text: str) -> tuple[dict[str, list[Instruction]], str]:
    """({computation: instructions}, entry computation name) of an HLO module's text."""
    computations: dict[str, list[Instruction]] = {}
    entry, current = None, None
    for line in text.splitlines():
        if current is None:
            m = _HEADER.match(line.strip())
            if m:
                current = m.group(1)
                computations[current] = []
                if line.lstrip().startswith("ENTRY"):
                    entry = current
            continue
        if line.strip() == "}":
            current = None
            continue
        inst = _parse_instruction(line)
        if inst is not None:
            computations[current].append(inst)
    if entry is None:
        raise HloParseError("no ENTRY computation in the HLO text")
    return computations, entry


def _window(attrs: str, key: str, spatial: int, default: int) -> list[int]:
    m = re.search(rf"\b{key}=([\dx_]+)", attrs)
    return [default] * spatial if not m else [int(v) for v in re.split(r"[x_]", m.group(1))]


def _valid_taps(out: int, size: int, window: int, pad_lo: int, stride: int, lhs_dilation: int,
                rhs_dilation: int) -> int:
    """Multiply-adds along one spatial dimension: (output, tap) pairs that land on an input element
    (XLA writes batched matmuls as convolutions whose padded windows mostly see zeros)."""
    total = 0
    for o in range(out):
        for k in range(window):
            pos = o * stride + k * rhs_dilation - pad_lo
            if 0 <= pos <= (size - 1) * lhs_dilation and pos % lhs_dilation == 0:
                total += 1
    return total


def _convolution_flops(inst: Instruction, lhs, kernel) -> float:
    labels = re.search(r"dim_labels=(\w+)_(\w+)->(\w+)", inst.attrs)
    out = array_dims(inst.shape)
    if not labels or not lhs or not kernel or not out:
        raise HloParseError(f"{inst.name}: convolution without dim_labels or operand shapes")
    lhs_l, ker_l, out_l = labels.groups()
    lhs_d, ker_d, out_d = lhs[0][1], kernel[0][1], out[0][1]
    spatial = [c for c in out_l if c.isdigit()]
    n = len(spatial)
    size = _window(inst.attrs, "size", n, 1)
    pad = re.search(r"\bpad=([\d_x-]+)", inst.attrs)
    pad_lo = [int(p.split("_")[0]) for p in pad.group(1).split("x")] if pad else [0] * n
    stride = _window(inst.attrs, "stride", n, 1)
    lhs_dil, rhs_dil = _window(inst.attrs, "lhs_dilate", n, 1), _window(inst.attrs, "rhs_dilate", n, 1)
    macs = out_d[out_l.index("b")] * out_d[out_l.index("f")] * ker_d[ker_l.index("i")]
    for j, c in enumerate(spatial):
        macs *= _valid_taps(out_d[out_l.index(c)], lhs_d[lhs_l.index(c)], size[j], pad_lo[j], stride[j],
                            lhs_dil[j], rhs_dil[j])
    return 2.0 * macs


class _Module:
    def __init__(self, text: str, loop_trips: Sequence[int]):
        self.computations, self.entry = parse_module(text)
        self.shapes = {i.name: i.shape for insts in self.computations.values() for i in insts}
        self.trips: Iterator[int] = iter(loop_trips)
        self.unused_trips = list(loop_trips)
        self._user_cache: dict[str, dict] = {}

    def operand_shape(self, name: str) -> str:
        return self.shapes.get(name, "")

    # FLOPs ----------------------------------------------------------------------------------
    def dot_flops(self, inst: Instruction) -> float:
        out = math.prod(d for _, dims in array_dims(inst.shape)[:1] for d in dims)
        if inst.opcode == "dot":
            lhs = array_dims(self.operand_shape(inst.operands[0]))
            m = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", inst.attrs)
            contract = math.prod(lhs[0][1][int(i)] for i in m.group(1).split(",") if i) if (m and lhs) else 1
            return 2.0 * out * contract
        return _convolution_flops(inst, array_dims(self.operand_shape(inst.operands[0])),
                                  array_dims(self.operand_shape(inst.operands[1])))

    def pallas_cost(self, inst: Instruction) -> Cost:
        """A Pallas kernel's work: splash by `splash_kernel_flops` and its operands; any other kernel by the
        cost estimate it was built with (`pl.CostEstimate`, carried in the custom call's backend config)."""
        if inst.name.startswith("splash_"):
            return Cost(self.pallas_flops(inst), self.io_bytes(inst))
        m = re.search(r'"cost_estimate":\{"flops":"(\d+)","transcendentals":"\d+","bytes_accessed":"(\d+)"', inst.attrs)
        if not m:
            raise NotImplementedError(f"no cost for the Pallas kernel {inst.name!r}: give its pallas_call a "
                                      "cost_estimate (or add a count beside policy.attention.splash_kernel_flops)")
        return Cost(float(m.group(1)), float(m.group(2)))

    def pallas_flops(self, inst: Instruction) -> float:
        m = re.search(r"operand_layout_constraints=\{(.*?)\}, \w+=", inst.attrs)
        floats = [d for t, d in array_dims(m.group(1) if m else "") if t.startswith(("f", "bf"))]
        if len(floats) < 2:
            raise HloParseError(f"{inst.name}: no query/key operand shapes")
        return splash_kernel_flops(inst.name, floats[0], floats[1])

    def fused_flops(self, computation: str) -> float:
        total = 0.0
        for inst in self.computations.get(computation, []):
            if inst.opcode in ("dot", "convolution"):
                total += self.dot_flops(inst)
            for key in ("calls", "to_apply"):
                if inst.opcode in ("fusion", "call"):
                    total += sum(self.fused_flops(c) for c in inst.called(key))
        return total

    # Bytes ----------------------------------------------------------------------------------
    def _users(self, computation: str) -> dict[str, list[tuple[Instruction, int]]]:
        if computation not in self._user_cache:
            users: dict[str, list[tuple[Instruction, int]]] = {}
            for i in self.computations.get(computation, []):
                for position, o in enumerate(i.operands):
                    users.setdefault(o, []).append((i, position))
            self._user_cache[computation] = users
        return self._user_cache[computation]

    def read_bytes(self, computation: str, name: str, full: float) -> float:
        """HBM bytes a fusion reads of its value `name`: the slices taken of it when every use slices it
        (directly, through bitcasts or inside nested fusions), else all of it (`full`)."""
        insts = self.computations.get(computation, [])
        if insts and (insts[-1].name == name or (insts[-1].opcode == "tuple" and name in insts[-1].operands)):
            return full  # it leaves the fusion: whatever reads the result reads all of it
        total = 0.0
        for user, position in self._users(computation).get(name, []):
            if user.opcode in _SLICING and position == 0:
                total += shape_bytes(user.shape)
            elif user.opcode in ("bitcast", "reshape"):
                total += self.read_bytes(computation, user.name, full)
            elif user.opcode == "fusion":
                (body,) = user.called("calls")
                param = next((i.name for i in self.computations.get(body, [])
                              if i.opcode == "parameter" and int(i.args) == position), None)
                if param is None:
                    return full
                if self._passes_through(body, param):  # a bitcast fusion: what reads its result decides
                    total += self.read_bytes(computation, user.name, full)
                else:
                    total += self.read_bytes(body, param, full)
            else:
                return full
            if total >= full:
                return full
        return total

    def _passes_through(self, computation: str, name: str) -> bool:
        """`name` is the computation's result, up to bitcasts and reshapes, and used for nothing else."""
        insts = self.computations.get(computation, [])
        while True:
            if insts and insts[-1].name == name:
                return True
            users = self._users(computation).get(name, [])
            if len(users) != 1 or users[0][0].opcode not in ("bitcast", "reshape"):
                return False
            name = users[0][0].name

    def fusion_bytes(self, inst: Instruction) -> float:
        (body,) = inst.called("calls") or [None]
        insts = self.computations.get(body, [])
        index = {i.name: int(i.args) for i in insts if i.opcode == "parameter"}
        root = insts[-1] if insts else None
        roots = [self._by_name(insts, o) for o in root.operands] if root is not None and root.opcode == "tuple" \
            else [root]
        in_place = {r.operands[0] for r in roots if r is not None and r.opcode == "dynamic-update-slice"}
        total = 0.0
        for param, position in index.items():
            if param in in_place or position >= len(inst.operands):
                continue
            total += self.read_bytes(body, param, shape_bytes(self.operand_shape(inst.operands[position])))
        for r in roots:
            if r is None:
                continue
            if r.opcode == "dynamic-update-slice" and r.operands[0] in index:
                total += 2 * shape_bytes(self._shape_in(insts, r.operands[1]))
            else:
                total += shape_bytes(r.shape)
        return total

    @staticmethod
    def _by_name(insts: list[Instruction], name: str) -> Instruction | None:
        return next((i for i in insts if i.name == name), None)

    def _shape_in(self, insts: list[Instruction], name: str) -> str:
        found = self._by_name(insts, name)
        return found.shape if found is not None else self.operand_shape(name)

    def io_bytes(self, inst: Instruction) -> float:
        if inst.opcode == "dynamic-update-slice":
            return 2 * shape_bytes(self.operand_shape(inst.operands[1]))
        if inst.opcode in _SLICING:
            return 2 * shape_bytes(inst.shape)
        return shape_bytes(inst.shape) + sum(shape_bytes(self.operand_shape(o)) for o in inst.operands)

    # Walk -----------------------------------------------------------------------------------
    def trip_count(self, inst: Instruction) -> int:
        m = re.search(r"backend_config=(\{.*\})", inst.attrs)
        if m:
            try:
                known = json.loads(m.group(1)).get("known_trip_count", {}).get("n")
            except json.JSONDecodeError:
                known = re.search(r'"known_trip_count":\{"n":"(\d+)"', m.group(1))
                known = known.group(1) if known else None
            if known is not None:
                return int(known)
        counted = self.counted_loop(inst)
        if counted is not None:
            return counted
        try:
            trips = next(self.trips)
        except StopIteration:
            raise HloParseError(f"loop {inst.name} has no known trip count and no loop_trips are left "
                                f"(given {self.unused_trips})") from None
        return int(trips)

    def _constant(self, computation: str, name: str) -> int | None:
        found = self._by_name(self.computations.get(computation, []), name)
        while found is not None and found.opcode in ("copy", "bitcast", "convert") and found.operands:
            found = self._by_name(self.computations.get(computation, []), found.operands[0])
        if found is None or found.opcode != "constant":
            return None
        try:
            return int(found.args)
        except ValueError:
            return None

    def counted_loop(self, inst: Instruction) -> int | None:
        """Trips of a loop whose condition is `counter < constant` with a constant start (a scan), as
        TPU HLO leaves them without `known_trip_count`; None for data-dependent loops."""
        (cond,) = inst.called("condition") or [None]
        insts = self.computations.get(cond, [])
        if not insts:
            return None
        root = insts[-1]
        scope = cond
        if root.opcode == "fusion":  # compare(param, param) fused: map the params back to the operands
            (body,) = root.called("calls")
            fused = self.computations.get(body, [])
            if not fused or fused[-1].opcode != "compare":
                return None
            index = {i.name: int(i.args) for i in fused if i.opcode == "parameter"}
            operands = [root.operands[index[o]] if o in index else o for o in fused[-1].operands]
            root = dataclasses.replace(fused[-1], operands=operands)
        if root.opcode != "compare" or "direction=LT" not in root.attrs or len(root.operands) != 2:
            return None
        counter, bound = root.operands
        limit = self._constant(scope, bound)
        counter_inst = self._by_name(insts, counter)
        if limit is None or counter_inst is None or counter_inst.opcode != "get-tuple-element":
            return None
        element = int(re.search(r"index=(\d+)", counter_inst.attrs).group(1))
        caller = next((c for c, body in self.computations.items() if inst in body), None)
        init_tuple = self._by_name(self.computations.get(caller, []), inst.operands[0])
        if init_tuple is None or init_tuple.opcode != "tuple" or element >= len(init_tuple.operands):
            return None
        start = self._constant(caller, init_tuple.operands[element])
        return None if start is None else max(limit - start, 0)

    def cost(self, computation: str) -> Cost:
        total = Cost()
        for inst in self.computations.get(computation, []):
            op = inst.opcode
            if op == "while":
                trips = self.trip_count(inst)
                body = Cost()
                for c in inst.called("body") + inst.called("condition"):
                    body += self.cost(c)
                total += body.scaled(trips)
            elif op == "conditional":
                branches = inst.called("branch_computations") or (inst.called("true_computation")
                                                                   + inst.called("false_computation"))
                costs = [self.cost(c) for c in branches]
                total += max(costs, key=lambda c: (c.flops, c.bytes), default=Cost())
            elif op in ("call", "async-start"):
                for c in inst.called("to_apply") + inst.called("calls"):
                    total += self.cost(c)
            elif op == "fusion":
                total += Cost(sum(self.fused_flops(c) for c in inst.called("calls")), self.fusion_bytes(inst))
            elif op == "custom-call" and 'custom_call_target="tpu_custom_call"' in inst.attrs:
                total += self.pallas_cost(inst)
            elif op in ("dot", "convolution"):
                total += Cost(self.dot_flops(inst), self.io_bytes(inst))
            elif op not in _FREE and not op.endswith("-done"):
                total += Cost(0.0, self.io_bytes(inst))
        return total


def program_cost(hlo_text: str, loop_trips: Sequence[int] = ()) -> Cost:
    """FLOPs and HBM bytes per chip of one run of the compiled program whose optimized HLO is
    `hlo_text` (`compiled.as_text()`); `loop_trips` as in the module docstring. Raises HloParseError
    when a data-dependent loop has no trip count, or when `loop_trips` has more than its loops."""
    module = _Module(hlo_text, loop_trips)
    cost = module.cost(module.entry)
    left = list(module.trips)
    if left:
        raise HloParseError(f"loop_trips {module.unused_trips} has {len(left)} more entries than the program "
                            "has data-dependent loops")
    return cost
