"""Cells that nbval checks print only what every machine agrees on.

A number that comes from training differs between an fp32 and a bf16 engine, between
AVX2 and AVX-512 kernels and between thread counts, so a checked cell
(``nbval-check-output``) may print a verdict about it (a comparison, best with a stated
margin) but never the number itself: that belongs in an unchecked cell. This test
follows, cell by cell, which names hold something trained (the result of a training
call, the network it trained in place, and everything computed from either) and flags a
checked cell that formats one of them as a number.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

BOOK = Path(__file__).resolve().parent.parent / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
CHECK_TAG = "nbval-check-output"

# Calls whose result is trained or measured live on this machine; each trains its first
# argument in place (a network), which is then live too.
LIVE_CALLS = {
    "train",  # resnet_lab.engine.train
    "fit_identity",  # resnet_lab.analysis.experiments.fit_identity
    "bench",  # resnet_lab.bench.bench: images/s of this machine
}
# Expressions whose value is a verdict, not a number: fine to print from live values.
VERDICT_CALLS = {"all", "any", "bool", "isinstance"}
# ... and counts fixed before training (how many layers were measured), in any format.
COUNT_CALLS = {"len"}


def _base(target: ast.expr) -> list[str]:
    """The names an assignment target binds or changes (``a``, ``a[k]``, ``a.b``, tuples)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Subscript, ast.Attribute, ast.Starred)):
        return _base(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _base(elt)]
    return []


def _called(node: ast.AST) -> tuple[set[str], set[str]]:
    """The functions ``node`` calls with arguments: (by bare name, by attribute:
    ``engine.train(model, ...)``; ``model.train()`` only sets a mode)."""
    calls = [
        n.func
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and any(not isinstance(a, ast.Constant) for a in n.args)
    ]
    return (
        {f.id for f in calls if isinstance(f, ast.Name)},
        {f.attr for f in calls if isinstance(f, ast.Attribute)},
    )


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _free_names(node: ast.AST) -> set[str]:
    """Names an expression reads from outside it (not those its comprehensions bind)."""
    names = _names(node)
    bound = {
        name
        for comp in ast.walk(node)
        if isinstance(comp, ast.comprehension)
        for name in _base(comp.target)
    }
    return names - bound


def _is_verdict(node: ast.expr, flags: set[str]) -> bool:
    if isinstance(node, (ast.Compare, ast.BoolOp)):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return True
    if isinstance(node, ast.Name):
        return node.id in flags
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in VERDICT_CALLS
    )


class Liveness:
    """Which names hold trained values, statement by statement through a notebook."""

    def __init__(self) -> None:
        self.live: set[str] = set()  # names (values or functions) that hold trained results
        self.flags: set[str] = set()  # names last bound to a verdict (a bool expression)

    def is_live(self, node: ast.AST) -> bool:
        by_name, by_attribute = _called(node)
        return bool(
            _free_names(node) & self.live
            or by_name & (LIVE_CALLS | self.live)
            or by_attribute & LIVE_CALLS
        )

    def _trains_in_place(self, node: ast.AST) -> None:
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            func = call.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in LIVE_CALLS | self.live and call.args:
                self.live.update(_base(call.args[0]))

    def _bind(self, targets: list[ast.expr], value: ast.expr | None, live: bool) -> None:
        for target in targets:
            for name in _base(target):
                if live:
                    self.live.add(name)
                elif isinstance(target, ast.Name):  # rebound to something not trained
                    self.live.discard(name)
            if isinstance(target, ast.Name):
                verdict = value is not None and _is_verdict(value, self.flags)
                (self.flags.add if verdict else self.flags.discard)(target.id)

    def bind_loop(self, target: ast.expr, iterable: ast.expr) -> None:
        """A loop's names: position by position over a literal list of tuples, and a dict's
        keys (``for key, value in d.items()``) stay what they were."""
        rows = iterable.elts if isinstance(iterable, (ast.List, ast.Tuple)) else None
        if (
            isinstance(target, ast.Tuple)
            and rows
            and all(isinstance(r, ast.Tuple) and len(r.elts) == len(target.elts) for r in rows)
        ):
            for k, elt in enumerate(target.elts):
                self._bind([elt], None, any(self.is_live(r.elts[k]) for r in rows))
            return
        items = (
            isinstance(iterable, ast.Call)
            and isinstance(iterable.func, ast.Attribute)
            and iterable.func.attr == "items"
        )
        if items and isinstance(target, ast.Tuple) and len(target.elts) == 2:
            self._bind(target.elts[1:], None, self.is_live(iterable))
            return
        self._bind([target], None, self.is_live(iterable))

    def run(self, statements: list[ast.stmt]) -> None:
        for stmt in statements:
            self.statement(stmt)

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = {a.arg for a in ast.walk(stmt.args) if isinstance(a, ast.arg)}
            outer, self.live = self.live, self.live - args  # a parameter shadows a global
            live = any(self.is_live(s) for s in stmt.body)
            self.live = outer | ({stmt.name} if live else set())
            return
        self._trains_in_place(stmt)
        if isinstance(stmt, ast.Assign):
            self._bind(stmt.targets, stmt.value, self.is_live(stmt.value))
        elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)) and stmt.value is not None:
            self._bind([stmt.target], stmt.value, self.is_live(stmt.value))
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self.bind_loop(stmt.target, stmt.iter)
            for _ in range(2):  # a second pass sees what the first made live
                self.run(stmt.body)
            self.run(stmt.orelse)
        elif isinstance(stmt, (ast.If, ast.While)):
            self.run(stmt.body)
            self.run(stmt.orelse)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            self.run(stmt.body)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse):
                self.run(block)

    def printed_numbers(self, stmt: ast.stmt, last: bool) -> list[str]:
        """Live values that ``stmt`` shows as something other than a verdict (``last``: the
        cell's last statement, whose value Jupyter displays)."""
        outer, self.live = self.live, self.live - (_names(stmt) - _free_names(stmt))
        try:
            return self._printed_numbers(stmt, last)
        finally:
            self.live = outer

    def _printed_numbers(self, stmt: ast.stmt, last: bool) -> list[str]:
        bad = []
        for node in ast.walk(stmt):
            if isinstance(node, ast.FormattedValue) and self.is_live(node.value):
                if isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") in (
                    COUNT_CALLS
                ):
                    continue
                if node.format_spec is not None or not _is_verdict(node.value, self.flags):
                    bad.append(ast.unparse(node.value))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id == "print":
                    bad += [
                        ast.unparse(arg)
                        for arg in node.args
                        if not isinstance(arg, ast.JoinedStr)
                        and self.is_live(arg)
                        and not _is_verdict(arg, self.flags)
                    ]
                elif node.func.id in self.live:  # a function of trained values may print them
                    bad.append(ast.unparse(node))
        value = stmt.value if last and isinstance(stmt, ast.Expr) else None
        shown = value is not None and not (
            isinstance(value, ast.Call) and getattr(value.func, "id", "") == "print"
        )
        if shown and self.is_live(value) and not _is_verdict(value, self.flags):
            if ast.unparse(value) not in bad:
                bad.append(ast.unparse(value))
        return bad


def checked_cells_printing_live_numbers(nb) -> list[str]:
    """'cell i: expression' for every trained number a checked cell prints."""
    transform = TransformerManager().transform_cell  # %magics into plain Python
    state, found = Liveness(), []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        body = ast.parse(transform(cell.source)).body
        checked = CHECK_TAG in cell.get("metadata", {}).get("tags", [])
        for k, stmt in enumerate(body):
            if checked and isinstance(stmt, ast.For):  # its body prints what the loop binds
                state.bind_loop(stmt.target, stmt.iter)
            if checked:
                found += [f"cell {i}: {e}" for e in state.printed_numbers(stmt, k == len(body) - 1)]
            state.statement(stmt)
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_checked_cells_print_no_trained_numbers(path):
    bad = checked_cells_printing_live_numbers(nbformat.read(path, as_version=4))
    assert not bad, (
        f"{path.name}: cells tagged {CHECK_TAG!r} print numbers that come from training, "
        "which differ between fp32 and bf16 engines, CPUs and thread counts. Print them in an "
        "unchecked cell and check a verdict with a stated margin instead:\n" + "\n".join(bad)
    )


def test_the_liveness_check_finds_trained_numbers():
    def notebook(*cells):
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_code_cell(source, metadata={"tags": [CHECK_TAG]} if checked else {})
            for source, checked in cells
        ]
        return nb

    setup = (
        "model = build('resnet20')\n"
        "params = count_parameters(model)\n"
        "run = train(model, data, config)\n"
        "err = 100 * run.final['train_error']\n"
        "ok = err < 50",
        False,
    )
    fine = notebook(
        setup,
        ("print(f'{params:,} parameters')", True),  # counted before training
        ("print(f'below 50 %: {err < 50}', ok, all([ok]))", True),  # verdicts
        ("model = build('resnet20')\nprint(f'{count_parameters(model):,}')", True),  # rebound
        ("print(f'{err:.1f} %')", False),  # the number itself, unchecked
    )
    assert checked_cells_printing_live_numbers(fine) == []
    bad = notebook(
        setup,
        ("print(f'{err:.1f} %')", True),
        ("print('error', err)", True),
        ("print(f'{count_parameters(model) * err:.0f}')", True),
        ("def table():\n    print(err)", False),
        ("table()", True),
        ("err", True),
    )
    assert checked_cells_printing_live_numbers(bad) == [
        "cell 1: err",
        "cell 2: err",
        "cell 3: count_parameters(model) * err",
        "cell 5: table()",
        "cell 6: err",
    ]
