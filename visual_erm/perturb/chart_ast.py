"""The ast path of chart error injection: edits any matplotlib script, with or without a ChartSpec.

Used for real datasets that have only code: `apply` edits the Python `ast` of
calls such as `ax.bar`, `plt.plot`, `set_title`, `set_yscale` (found by source
position) and the result is `ast.unparse`d; footprints wrap the edited call and
paint its artist. `visual_erm.perturb.chart` falls back to `perturb_code` for
tasks without a spec and re-exports everything here.
"""
from __future__ import annotations

import ast
import random
from collections.abc import Callable

from visual_erm.perturb.base import Edit, NotApplicable, Perturbation
from visual_erm.perturb.chart_plan import MAX_EDITS, Plan, alter_text, choose_plans, new_value
from visual_erm.tasks.base import PROBE_COLOR
from visual_erm.tasks.chart_vocab import EXTRA_COLORS

TEXT_CALLS = {"set_title": "title", "title": "title", "suptitle": "figure title", "set_xlabel": "x-axis label",
              "xlabel": "x-axis label", "set_ylabel": "y-axis label", "ylabel": "y-axis label"}  # fmt: skip
SCALE_CALLS = {"set_xscale": "x", "xscale": "x", "set_yscale": "y", "yscale": "y"}
COLOR_NOUNS = {"bar": "bars", "barh": "bars", "plot": "line", "step": "line", "scatter": "points", "hist": "histogram",
               "fill_between": "filled area"}  # fmt: skip
PROBE = repr(PROBE_COLOR)


def perturb_code(code: str, rng: random.Random, n_edits: int) -> Perturbation:
    """The ast path on any matplotlib script: up to `n_edits` edits of AST_EDITS."""
    plans = choose_plans(AST_EDITS, code, rng, max(0, min(n_edits, MAX_EDITS)))
    if not plans:
        return Perturbation(code, ())
    tree = ast.parse(code)
    for plan in plans:
        plan.apply(tree)
    return Perturbation(ast.unparse(tree) + "\n", tuple(p.edit for p in plans))


def _calls(tree, names) -> list[ast.Call]:
    return [n for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in names]


def _pos(node) -> tuple:
    return (type(node).__name__, getattr(node, "lineno", None), getattr(node, "col_offset", None))


def _at(tree, pos):
    return next(n for n in ast.walk(tree) if _pos(n) == pos)


def _kw(call: ast.Call, *names):
    return next((k for k in call.keywords if k.arg in names), None)


def _const(node, kind):
    return node.value if isinstance(node, ast.Constant) and type(node.value) in kind else None


def _number(node):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _number(node.operand)
        return None if value is None else -value
    return _const(node, (int, float))


def _literal(tree, node):
    """The list/tuple literal behind `node`: inline, inside np.array(...), or a name bound once."""
    if isinstance(node, ast.Call) and ast.unparse(node.func) in ("np.array", "numpy.array") and node.args:
        node = node.args[0]
    if isinstance(node, ast.Name):
        stores = [n for n in ast.walk(tree)
                  if isinstance(n, ast.Name) and n.id == node.id and isinstance(n.ctx, ast.Store)]
        binds = [s for s in tree.body if isinstance(s, ast.Assign) and len(s.targets) == 1 and s.targets[0] in stores]
        if len(stores) != 1 or len(binds) != 1:
            return None
        return _literal(tree, binds[0].value) if not isinstance(binds[0].value, ast.Name) else None
    return node if isinstance(node, (ast.List, ast.Tuple)) and node.elts else None


def _statement(tree, call):
    """(body, index) of the statement that is exactly this call (bare or assigned)."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            for k, stmt in enumerate(body if isinstance(body, list) else ()):
                if isinstance(stmt, (ast.Expr, ast.Assign)) and stmt.value is call:
                    return body, k
    raise NotApplicable("the call is not a statement of its own")


def _is_statement(tree, call) -> bool:
    try:
        return bool(_statement(tree, call))
    except NotApplicable:
        return False


def _paint_after(tree, call, source: str, wrap: bool = False) -> None:
    """Insert `source` after the call's statement; `wrap` first binds the call's result to `_probe`."""
    body, k = _statement(tree, call)
    stmts = ast.parse(source).body
    for node in (n for stmt in stmts for n in ast.walk(stmt)):
        node.lineno = node.col_offset = None  # inserted code has no source position to be found by
    if wrap:
        stmt = body[k]
        head = [ast.Assign([ast.Name("_probe", ast.Store())], call, lineno=None)]
        if isinstance(stmt, ast.Assign):
            head.append(ast.Assign(stmt.targets, ast.Name("_probe", ast.Load()), lineno=None))
        body[k : k + 1] = head + stmts
    else:
        body[k + 1 : k + 1] = stmts


def _qualify(tree, call: ast.Call, element: str) -> str:
    """In scripts drawing on several axes, says which: "... in the subplot titled 'Revenue'"."""
    receiver = ast.unparse(call.func.value)
    receivers = {ast.unparse(c.func.value) for c in _calls(tree, tuple(COLOR_NOUNS) + ("pie", "imshow"))}
    if len(receivers) < 2 or receiver in ("plt", "fig"):
        return element
    titles = [c.args[0].value for c in _calls(tree, ("set_title",))
              if ast.unparse(c.func.value) == receiver and c.args and _const(c.args[0], (str,))]  # fmt: skip
    return f"{element} in the subplot titled '{titles[0]}'" if titles else f"{element} on axes '{receiver}'"


def _ast_plan(code, name, category, location, description, claims, apply, probe) -> Plan:
    single, painted = ast.parse(code), ast.parse(code)
    apply(single)
    probe(painted)
    edit = Edit(name, category, location, description, ast.unparse(single) + "\n", (code, ast.unparse(painted) + "\n"))
    return Plan(edit, frozenset(claims), apply)


def _data_arg(call: ast.Call):
    """The values argument of bar/barh/plot/pie and the category argument before it (or None)."""
    func, args = call.func.attr, [a for a in call.args if _const(a, (str,)) is None]
    if func == "pie":
        kw = _kw(call, "x")
        return (args[0] if args else kw and kw.value), _kw(call, "labels") and _kw(call, "labels").value
    if func == "plot":
        return (args[-1], args[0] if len(args) == 2 else None) if len(args) in (1, 2) else (None, None)
    kw = _kw(call, "height" if func == "bar" else "width")
    return (args[1] if len(args) > 1 else kw and kw.value), (args[0] if args else None)


def ast_change_data_value(code, rng):
    tree, found = ast.parse(code), []
    for call in _calls(tree, ("bar", "barh", "plot", "pie")):
        data, cats = _data_arg(call)
        values = _literal(tree, data) if data is not None else None
        if values is not None and all(_number(e) is not None for e in values.elts):
            if _is_statement(tree, call):
                found.append((call, values, cats))
    if not found:
        raise NotApplicable("no literal data in bar/barh/plot/pie calls")
    call, node, cats = rng.choice(found)
    numbers = [_number(e) for e in node.elts]
    j = rng.randrange(len(numbers))
    old, func = numbers[j], call.func.attr
    new = new_value(rng, old, numbers, positive=func == "pie")
    labels = _literal(tree, cats) if cats is not None else None
    cat = _const(labels.elts[j], (str, int)) if labels is not None and len(labels.elts) == len(numbers) else None
    series = _kw(call, "label") and _const(_kw(call, "label").value, (str,))
    noun = {"bar": "bar", "barh": "bar", "plot": "point", "pie": "wedge"}[func]
    item = f"{noun} '{cat}'" if cat is not None else f"{noun} {j + 1}"
    of = f" of series '{series}'" if series and func != "plot" else (f" of line '{series}'" if series else "")
    paint = f"_probe[{j}].set_facecolor({PROBE})"  # one bar of the BarContainer
    if func == "pie":
        paint = f"_probe[0][{j}].set_facecolor({PROBE})"
    elif func == "plot":  # a marker on the reference point
        paint = (f"{ast.unparse(call.func.value)}.plot([_probe[0].get_xdata()[{j}]], [_probe[0].get_ydata()[{j}]], "
                 f"marker='o', markersize=10, linestyle='none', color={PROBE}, zorder=5)")
    node_pos, call_pos = _pos(node), _pos(call)

    def apply(tree):
        _at(tree, node_pos).elts[j] = ast.Constant(new)

    location, words = _qualify(tree, call, item + of), f"The {item}{of} is {new} instead of {old}"
    return _ast_plan(code, "change_data_value", "data_error", location, words, {f"data@{node_pos}"}, apply,
                     lambda t: _paint_after(t, _at(t, call_pos), paint, wrap=True))  # fmt: skip


def ast_change_color(code, rng):
    tree, found = ast.parse(code), []
    for call in _calls(tree, tuple(COLOR_NOUNS)):
        kw = _kw(call, "color", "c")
        if kw is not None and _const(kw.value, (str,)) is not None:
            found.append((call, kw.value.value))  # calls without a colour draw from the colour cycle: left alone
    if not found:
        raise NotApplicable("no call with an explicit colour")
    call, old = rng.choice(found)
    new = rng.choice([c for c in EXTRA_COLORS if c != old])
    label = _kw(call, "label") and _const(_kw(call, "label").value, (str,))
    noun = COLOR_NOUNS[call.func.attr]
    same = [c for c, _ in found if c.func.attr == call.func.attr]
    element = f"{noun} '{label}'" if label else (noun if len(same) == 1 else f"{noun} {same.index(call) + 1}")
    pos = _pos(call)

    def recolor(color):
        return lambda tree: setattr(_kw(_at(tree, pos), "color", "c"), "value", ast.Constant(color))

    words = f"The {element} {'are' if noun == 'bars' else 'is'} {new} instead of {old}"
    return _ast_plan(code, "change_color", "style_error", _qualify(tree, call, element), words, {f"call@{pos}"},
                     recolor(new), recolor(PROBE_COLOR))  # fmt: skip


def _ast_text(name: str, kinds: tuple):
    def edit(code, rng):
        tree = ast.parse(code)
        found = [c for c in _calls(tree, [k for k in TEXT_CALLS if TEXT_CALLS[k] in kinds])
                 if c.args and _const(c.args[0], (str,))]  # fmt: skip
        if not found:
            raise NotApplicable(f"no literal {kinds[0]}")
        call = rng.choice(found)
        old, what = call.args[0].value, TEXT_CALLS[call.func.attr]
        new = alter_text(old, rng)
        twins = [c for c in found if TEXT_CALLS[c.func.attr] == what]
        location = what if len(twins) == 1 else f"title '{old}'" if what == "title" else _qualify(tree, call, what)
        pos = _pos(call)

        def apply(tree):
            _at(tree, pos).args[0] = ast.Constant(new)

        def probe(tree):
            target = _at(tree, pos)
            target.keywords = [k for k in target.keywords if k.arg not in ("color", "c")]
            target.keywords.append(ast.keyword("color", ast.Constant(PROBE_COLOR)))

        return _ast_plan(code, name, "text_error", location, f"The {what} reads '{new}' instead of '{old}'",
                         {f"call@{pos}"}, apply, probe)  # fmt: skip

    return edit


def ast_change_scale(code, rng):
    tree = ast.parse(code)
    found = [c for c in _calls(tree, SCALE_CALLS) if c.args and _const(c.args[0], (str,))]
    if found:
        call = rng.choice(found)
        axis, old = SCALE_CALLS[call.func.attr], call.args[0].value
        new, pos = "linear" if old != "linear" else "log", _pos(call)

        def apply(tree):
            _at(tree, pos).args = [ast.Constant(new)] + _at(tree, pos).args[1:]

    else:  # no scale call: switch a plot with positive literal data to log right after it is drawn
        plots = []
        for call in _calls(tree, ("bar", "barh", "plot")):
            data, _ = _data_arg(call)
            values = _literal(tree, data) if data is not None else None
            if values is not None and all((_number(e) or 0) > 0 for e in values.elts):
                plots.append(call)
        plots = [c for c in plots if _is_statement(tree, c)]
        if not plots:
            raise NotApplicable("no scale call and no plot of positive literal data")
        call = rng.choice(plots)
        axis, old, new, pos = "x" if call.func.attr == "barh" else "y", "linear", "log", _pos(call)
        receiver = ast.unparse(call.func.value)
        setter = f"plt.{axis}scale('log')" if receiver == "plt" else f"{receiver}.set_{axis}scale('log')"

        def apply(tree):
            return _paint_after(tree, _at(tree, pos), setter)

    receiver = ast.unparse(call.func.value)
    name = {"log": "logarithmic", "linear": "linear"}
    paint = f"{receiver}.tick_params(axis='{axis}', which='both', labelcolor={PROBE})"
    return _ast_plan(code, "change_scale", "structure_error", _qualify(tree, call, f"{axis}-axis scale"),
                     f"The {axis}-axis uses a {name.get(new, new)} scale instead of a {name.get(old, old)} one",
                     {f"scale@{receiver}:{axis}"}, apply, lambda t: _paint_after(t, _at(t, pos), paint))  # fmt: skip


AST_EDITS: dict[str, Callable[[str, random.Random], Plan]] = {
    "change_data_value": ast_change_data_value,
    "change_color": ast_change_color,
    "change_title_text": _ast_text("change_title_text", ("title", "figure title")),
    "change_axis_label": _ast_text("change_axis_label", ("x-axis label", "y-axis label")),
    "change_scale": ast_change_scale,
}
