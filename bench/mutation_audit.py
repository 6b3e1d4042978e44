"""Mutation audit of the numeric core: which small code changes do the tests fail to notice?

For each audited module the script parses the source with :mod:`ast` and makes one *mutant*
per site, one at a time:

* arithmetic ``+``/``-``, ``*``/``/``, ``//`` -> ``/``, ``**`` -> ``*`` (also in ``x += ...``);
* comparisons ``<``/``<=``, ``>``/``>=``, ``==``/``!=``, ``in``/``not in``, ``is``/``is not``;
* ``and``/``or``; numeric constant ``c`` -> ``c + 1``; a unary minus or ``not`` dropped;
* ``min``/``max`` (also ``np.minimum``/``np.maximum``, ``floor``/``ceil``, ``any``/``all``,
  ``argmin``/``argmax``);
* ``return x`` -> ``return 0`` / ``0.0`` / ``""`` / ``None`` / ``not x`` in functions annotated
  ``-> int``, ``float``, ``str``, ``... | None`` or ``bool``.

Docstrings, error messages (everything under ``raise``), f-strings, type hints, decorators and
logging/progress/warning calls are not mutated. Each mutant is written over a *copy* of
``rul_core`` in a temporary folder, first on the import path of a pytest child process
(forked after numpy/scipy/pywt/pytest are imported, so a run costs the tests, not the
imports) running the module's mapped test files (``-x``, with a timeout): the worktree is
never left mutated, even if the audit is killed. A mutant is *killed* (a test failed or the import
broke), *survived* (all tests passed) or *timeout*. Survivors known to be equivalent (no
input can tell them apart from the original) are listed in :data:`EQUIVALENT` with the
reason; any other survivor is a gap in the tests.

    python bench/mutation_audit.py                      # every module, ~20 minutes on 2 cores
    python bench/mutation_audit.py --module metrics --module signal/raster --max-mutants 30
    python bench/mutation_audit.py --list               # print the mutants, run nothing

Writes ``bench/results/mutation_audit.md`` (``--out`` to change). Run it from the repository
root with the project's virtualenv; one pytest runs at a time.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "rul_core"

#: module (relative to rul_core, no .py) -> the fast test files that should pin it down
MODULES: dict[str, tuple[str, ...]] = {
    "metrics": ("tests/test_metrics.py",),
    # remaining_time's hand values sit with the PHM 2012 tests (a fast test, no training)
    "labels": ("tests/test_labels.py", "tests/test_phm2012.py::test_remaining_time_hand_values",
               "tests/test_phm2012.py::test_remaining_time_edges_by_hand"),
    "signal/raster": ("tests/test_signal_raster.py",),
    "signal/features": ("tests/test_signal_features.py", "tests/test_signal_cwt.py"),
    "signal/cwt": ("tests/test_signal_features.py", "tests/test_signal_cwt.py"),
    "signal/noise": ("tests/test_signal_misc.py",),
    "signal/filters": ("tests/test_signal_misc.py",),
    "signal/windows": ("tests/test_signal_misc.py",),
}

_ZERO_SEVERITY = ("adds severity 0 times a draw: the same values (up to the sign of a zero); "
                  "only a generator passed in by the caller advances")
_EXACT_DRAW = ("differs only when a uniform draw equals the threshold exactly "
               "(probability 2**-53 per sample)")
_FFT_SIZE = ("any circular convolution size >= 2N - 1 holds the whole linear convolution; "
             "the taps beyond 2N - 1 are zeros")
_THREADS = "scipy.fft's thread count: the same transforms"
_BATCH = "batch size of a loop over windows: the same values per window"

#: surviving mutants that no input can distinguish from the original, by :attr:`Mutant.key`
EQUIVALENT: dict[str, str] = {
    "metrics::score::d < 0 -> d <= 0": "at d = 0 both branches give expm1(0) = 0",
    "metrics::phm2012_accuracy::er <= 0 -> er < 0": "at Er = 0 both branches give exp(0) = 1",
    "labels::health_indicator::m2 > 0 -> m2 >= 0":
        "a constant snapshot then gets m4 / 1**2 = 0 / 1 = 0, the sentinel itself",
    "labels::health_indicator::np.where(m2 > 0, m2, 1.0) -> np.where(m2 > 0, m2, 2.0)":
        "the stand-in divisor is used only where m2 = m4 = 0 (0 / 4 = 0, no warning), and "
        "that branch is discarded",
    "labels::detect_knee::trend.size < k -> trend.size <= k":
        "with N = k the only run starts at snapshot 0, inside the healthy stretch, which is "
        "never outside: None either way",
    "signal/raster::<module>::64 -> 65": "_CHUNK: " + _BATCH,
    "signal/raster::amplitude_levels::not np.issubdtype(x.dtype, np.floating) -> "
    "np.issubdtype(x.dtype, np.floating)":
        "float input then always goes to float64, exact like float32 for the power-of-two "
        "rows that skip the conversion; integer input is clipped to float64 anyway",
    "signal/raster::amplitude_levels::int(rows) - 1 -> int(rows) - 2":
        "for rows >= 2, rows & (rows - 2) is 0 exactly when rows is a power of two, as "
        "rows & (rows - 1)",
    "signal/raster::amplitude_levels::np.clip(x, 0.0, 1.0) -> np.clip(x, 0.0, 2.0)":
        "any x >= 1 gives floor(rows x) >= rows, capped at rows - 1 by the next line",
    "signal/raster::_runs_general::d < 0 -> d <= 0":
        "the sign only multiplies offsets that are 0 when d = 0",
    "signal/raster::_runs_general::d < 0 -> d < 1":
        "d is an integer (d < 1 is d <= 0); the sign only multiplies offsets that are 0 "
        "when d = 0",
    "signal/raster::_runs_general::s + 1 -> s + 2":
        "the extra relative column c = s + 1 is computed but never read (only [..., :s] and "
        "[..., s])",
    "signal/raster::_runs_general::a >= s -> a > s":
        "at a = s (45 degrees) both the shallow and the steep formula light row i = c",
    **{f"signal/raster::_runs_general::s:-1:s -> s:-2:s{n}":
       "for spacing s >= 2 (the only spacings here) stop -1 and -2 both exclude the last "
       "column (L-1)s and include (L-2)s" for n in ("", "#2", "#3", "#4")},
    "signal/raster::imr_pair_counts::np.full((n, 1), -1, dtype=np.int16) -> "
    "np.full((n, 1), 1, dtype=np.int16)":
        "the pad column's lo = rows lies above every level, so it is empty whatever its hi",
    "signal/raster::imr_pair_counts::np.full((n, 1), -1, dtype=np.int16) -> "
    "np.full((n, 1), -2, dtype=np.int16)":
        "the pad column's lo = rows lies above every level, so it is empty whatever its hi",
    "signal/features::histogram_entropy::first - 0.5 -> first - 1.5":
        "a constant window has every sample in one bin whatever the padded range: entropy 0",
    "signal/features::histogram_entropy::last + 0.5 -> last + 1.5":
        "a constant window has every sample in one bin whatever the padded range: entropy 0",
    "signal/features::histogram_entropy::idx[idx == bins] -= 1 -> idx[idx == bins] -= 2":
        "the maximum then sits at bins - 2 (or -1 for one bin) and the bump "
        "(x >= edges[idx + 1]) moves it to the last bin",
    "signal/features::histogram_entropy::x < np.take_along_axis(edges, idx, axis=1) -> "
    "x <= np.take_along_axis(edges, idx, axis=1)":
        "a sample on edge idx is moved down and straight back up by the next line's bump "
        "(x >= edges[idx])",
    "signal/features::histogram_entropy::idx[x < np.take_along_axis(edges, idx, axis=1)] "
    "-= 1 -> idx[x < np.take_along_axis(edges, idx, axis=1)] -= 2":
        "the raw index is at most one too high; two down is one too low, and the bump "
        "(x >= edges[idx + 1]) moves it back up",
    "signal/features::histogram_entropy::p > 0 -> p >= 0":
        "an empty bin gives 0 * log(1) = 0 either way",
    "signal/features::histogram_entropy::p > 0 -> p >= 0#2":
        "log(0) = -inf, 0 * -inf = nan only in the branch the outer where discards "
        "(warnings silenced by errstate)",
    "signal/features::histogram_entropy::np.where(p > 0, p, 1.0) -> np.where(p > 0, p, 2.0)":
        "the stand-in only feeds the branch the outer where discards",
    "signal/features::moment_features::np.where(constant, 1.0, m2) -> "
    "np.where(constant, 2.0, m2)":
        "the stand-in divisor only feeds the branches discarded for constant windows "
        "(0 / 4, no warning)",
    "signal/features::tf_features::256 -> 257": "chunk: " + _BATCH,
    "signal/features::tf_features::-1 -> 1": "workers: " + _THREADS,
    "signal/features::tf_features::-1 -> -2": "workers: " + _THREADS,
    "signal/cwt::CwtPlan.__init__::2 * n - 1 -> 2 * n + 1": "fft_size: " + _FFT_SIZE,
    "signal/cwt::CwtPlan.__init__::2 * n -> 3 * n": "fft_size: " + _FFT_SIZE,
    "signal/cwt::CwtPlan.__init__::2 * n - 1 -> 2 * n + 1#2":
        "q is zero beyond its first 2N - 1 taps; " + _FFT_SIZE,
    "signal/cwt::CwtPlan.__init__::2 * n -> 3 * n#2":
        "q is zero beyond its first 2N - 1 taps; " + _FFT_SIZE,
    "signal/cwt::CwtPlan.__init__::src_hi >= src_lo -> src_hi > src_lo":
        "src_hi = src_lo would need shift + N - 1 <= 0 or shift - N + 1 = M; with "
        "shift <= M / 2 + 1 and N >= 2 neither happens (the copy always runs)",
    "signal/cwt::CwtPlan._spectra::axis=-1 -> axis=1": "the windows are always 2-D here",
    "signal/cwt::CwtPlan.coefficients::workers=-1 -> workers=1": _THREADS,
    "signal/cwt::CwtPlan.coefficients::workers=-1 -> workers=-2": _THREADS,
    "signal/cwt::CwtPlan.energies::4 -> 5": "chunk: " + _BATCH,
    "signal/cwt::CwtPlan.energies::-1 -> 1": "workers: " + _THREADS,
    "signal/cwt::CwtPlan.energies::-1 -> -2": "workers: " + _THREADS,
    "signal/noise::uniform_noise::severity > 0 -> severity >= 0": _ZERO_SEVERITY,
    "signal/noise::gaussian_noise::severity > 0 -> severity >= 0": _ZERO_SEVERITY,
    "signal/noise::salt_and_pepper::p_pepper / total -> p_pepper * total":
        "when total > 1 every sample is replaced and the split is set by p_salt / total "
        "alone: p_salt / total + p_pepper * total >= 1 still covers every draw",
    "signal/noise::salt_and_pepper::total > 1 -> total >= 1":
        "at total = 1 dividing by it changes nothing",
    "signal/noise::salt_and_pepper::u < p_salt -> u <= p_salt": _EXACT_DRAW,
    "signal/noise::salt_and_pepper::u >= p_salt -> u > p_salt": _EXACT_DRAW,
    "signal/noise::salt_and_pepper::u < p_salt + p_pepper -> u <= p_salt + p_pepper":
        _EXACT_DRAW,
    "signal/noise::NoiseAugmentation.noise_model::np.random.SeedSequence(words)."
    "generate_state(1) -> np.random.SeedSequence(words).generate_state(2)":
        "SeedSequence words are a stream: the first of two is the only one of one",
    "signal/filters::gaussian_filter::sigma < 0 -> sigma <= 0":
        "sigma = 0 has already returned a copy two lines above",
}

BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Pow: ast.Mult,
}
CMP_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
CALL_SWAP: dict[str, str] = {
    "min": "max", "max": "min", "minimum": "maximum", "maximum": "minimum", "amin": "amax",
    "amax": "amin", "floor": "ceil", "ceil": "floor", "any": "all", "all": "any",
    "argmin": "argmax", "argmax": "argmin",
}
#: calls whose arguments are messages, logging or progress reports, not numerics
QUIET_CALLS = {"warn", "emit", "print", "debug", "info", "warning", "error", "exception"}


@dataclass(frozen=True)
class Mutant:
    """One mutation site: ``index`` in the module's deterministic walk order."""

    module: str
    index: int
    line: int
    function: str
    before: str
    after: str
    key: str  # stable across line moves: module::function::before -> after[#occurrence]


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | timeout
    seconds: float


def _returns_kind(func: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """``int``/``float``/``str``/``bool``/``none`` for simply typed functions, else None."""
    ann = func.returns
    if ann is None:
        return None
    text = ast.unparse(ann).replace(" ", "")
    if text in ("int", "float", "str", "bool"):
        return text
    if text.endswith("|None") or text.startswith("None|"):
        return "none"
    return None


def _replacement_return(kind: str, value: ast.expr) -> ast.expr | None:
    if kind == "bool":
        return ast.UnaryOp(op=ast.Not(), operand=value)
    const = {"int": 0, "float": 0.0, "str": "", "none": None}[kind]
    if isinstance(value, ast.Constant) and value.value == const:
        return None
    return ast.Constant(value=const)


def _call_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _edits(node: ast.AST, returns: str | None) -> Iterator[Callable[[], ast.AST | None]]:
    """Mutations of one node, each a closure that edits the node in place.

    A closure returns the node to show as "after" (usually ``node`` itself) or a replacement
    node that the caller must put in ``node``'s place.
    """
    if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in BINOP_SWAP:
        def swap_op(n: ast.BinOp | ast.AugAssign = node) -> ast.AST:
            n.op = BINOP_SWAP[type(n.op)]()
            return n
        yield swap_op
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in CMP_SWAP:
                def swap_cmp(n: ast.Compare = node, i: int = i) -> ast.AST:
                    n.ops[i] = CMP_SWAP[type(n.ops[i])]()
                    return n
                yield swap_cmp
    elif isinstance(node, ast.BoolOp):
        def swap_bool(n: ast.BoolOp = node) -> ast.AST:
            n.op = ast.Or() if isinstance(n.op, ast.And) else ast.And()
            return n
        yield swap_bool
    elif (isinstance(node, ast.Constant) and isinstance(node.value, int | float)
          and not isinstance(node.value, bool)):
        def bump(n: ast.Constant = node) -> ast.AST:
            n.value = n.value + 1
            return n
        yield bump
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        yield lambda n=node: n.operand
    elif isinstance(node, ast.Call) and _call_name(node) in CALL_SWAP:
        def swap_call(n: ast.Call = node) -> ast.AST:
            if isinstance(n.func, ast.Name):
                n.func.id = CALL_SWAP[n.func.id]
            else:
                assert isinstance(n.func, ast.Attribute)
                n.func.attr = CALL_SWAP[n.func.attr]
            return n
        yield swap_call
    elif (isinstance(node, ast.Return) and returns and node.value is not None
          and _replacement_return(returns, node.value) is not None):
        def zero(n: ast.Return = node, kind: str = returns) -> ast.AST:
            n.value = _replacement_return(kind, n.value)
            return n
        yield zero


def _walk(tree: ast.Module) -> Iterator[tuple[ast.AST, ast.AST, str, str | None]]:
    """``(node, parent, function, returns kind)`` in a fixed order, skipping non-numerics."""

    def visit(node: ast.AST, function: str, returns: str | None) -> Iterator[
            tuple[ast.AST, ast.AST, str, str | None]]:
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns", "decorator_list", "type_comment"):
                continue
            children = value if isinstance(value, list) else [value]
            for child in children:
                if not isinstance(child, ast.AST):
                    continue
                if isinstance(child, ast.Raise | ast.JoinedStr | ast.Assert):
                    continue
                if (isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant)
                        and isinstance(child.value.value, str)):
                    continue  # docstring or bare string
                if isinstance(child, ast.Call) and _call_name(child) in QUIET_CALLS:
                    continue
                name, kind = function, returns
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    name = f"{function}.{child.name}" if function else child.name
                    kind = (_returns_kind(child) if not isinstance(child, ast.ClassDef)
                            else None)
                yield child, node, function, returns
                yield from visit(child, name, kind)

    yield from visit(tree, "", None)


def _sites(source: str) -> Iterator[tuple[ast.Module, ast.AST, ast.AST, str, str | None,
                                          Callable[[], ast.AST | None]]]:
    tree = ast.parse(source)
    for node, parent, function, returns in _walk(tree):
        for edit in _edits(node, returns):
            yield tree, node, parent, function, returns, edit


def _replace(parent: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for field, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, field, new)
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new
                    return
    raise RuntimeError(f"node not found in its parent {parent!r}")


def _shown(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 70 else text[:67] + "..."


def _context(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST:
    """What to show for a mutant: a bare constant or minus sign is shown with the (short)
    expression around it, so ``1 -> 2`` reads ``s:-1:s -> s:-2:s``."""
    if isinstance(node, ast.Return):
        return node.value  # type: ignore[return-value]
    ctx = node
    while isinstance(ctx, ast.Constant | ast.UnaryOp):
        up = parents.get(ctx)
        if (not isinstance(up, ast.expr | ast.keyword | ast.AugAssign)
                or len(ast.unparse(up)) > 60):
            break
        ctx = up
    return ctx


def mutants(module: str) -> list[Mutant]:
    """Every mutant of ``rul_core/<module>.py`` in walk order (stable keys)."""
    source = (ROOT / PACKAGE / f"{module}.py").read_text()
    out: list[Mutant] = []
    seen: dict[str, int] = {}
    count = sum(1 for _ in _sites(source))
    for index in range(count):
        tree, node, parent, function, _, edit = _nth_site(source, index)
        parents = {child: up for up in ast.walk(tree) for child in ast.iter_child_nodes(up)}
        context = _context(node, parents)
        before = _shown(context)
        result = edit()
        if result is not node:
            _replace(parent, node, result)
        if context is node and not isinstance(node, ast.Return):
            context = result
        after = _shown(result.value if isinstance(result, ast.Return) else context)
        base = f"{module}::{function or '<module>'}::{before} -> {after}"
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base}#{seen[base]}"
        out.append(Mutant(module, index, getattr(node, "lineno", 0), function or "<module>",
                          before, after, key))
    return out


def _nth_site(source: str, index: int) -> tuple[ast.Module, ast.AST, ast.AST, str,
                                                 str | None, Callable[[], ast.AST | None]]:
    for i, site in enumerate(_sites(source)):
        if i == index:
            return site
    raise IndexError(index)


def mutant_source(module: str, index: int) -> str:
    """The whole module with mutant ``index`` applied (comments are lost; code is the same)."""
    source = (ROOT / PACKAGE / f"{module}.py").read_text()
    tree, node, parent, _, _, edit = _nth_site(source, index)
    result = edit()
    if result is not node:
        _replace(parent, node, result)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


#: third-party modules the tests import, loaded once in the parent so each fork starts warm
WARM_IMPORTS = ("numpy", "scipy.fft", "scipy.ndimage", "scipy.stats", "pywt", "skimage.draw",
                "pytest", "pytest_timeout")


def _warm_up() -> None:
    import contextlib
    import importlib

    if PACKAGE in sys.modules:
        raise RuntimeError(f"{PACKAGE} is already imported; the forks would not see mutants")
    for name in WARM_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _pytest(copy_root: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float]:
    """Run pytest on ``tests`` in a forked child that imports rul_core from ``copy_root``.

    The child is a fork of this process (third-party imports already done, rul_core not),
    so only the mutated package is imported afresh; it writes no bytecode, so a mutant of
    the same size as the previous one can never reuse its stale .pyc.
    """
    args = ["-q", "-x", "-p", "no:cacheprovider", "--no-header", f"--timeout={int(timeout)}",
            *tests]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        rc = 3
        try:
            import pytest

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            sys.dont_write_bytecode = True
            sys.path.insert(0, str(copy_root))
            os.environ["PYTHONPATH"] = f"{copy_root}{os.pathsep}{ROOT}"
            os.chdir(ROOT)
            rc = int(pytest.main(args))
        finally:
            os._exit(rc)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        seconds = time.perf_counter() - start
        if done:
            break
        if seconds > timeout:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return "timeout", seconds
        time.sleep(0.01)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return "survived", seconds
    if code in (1, 2, 3) or code < 0:  # failures, collection/import error, crash by signal
        return "killed", seconds
    raise RuntimeError(f"pytest exited {code} on {tests}")


def _spread(items: list[Mutant], cap: int | None) -> list[Mutant]:
    """At most ``cap`` mutants spread evenly over the module (deterministic)."""
    if cap is None or len(items) <= cap:
        return items
    return [items[(i * len(items)) // cap] for i in range(cap)]


def audit_module(module: str, copy_root: Path, cap: int | None,
                 timeout_factor: float) -> tuple[list[Outcome], float]:
    """Run every (capped) mutant of ``module``; returns outcomes and the baseline seconds."""
    tests = MODULES[module]
    target = copy_root / PACKAGE / f"{module}.py"
    original = target.read_text()
    target.write_text(ast.unparse(ast.parse(original)) + "\n")  # unparsing alone changes nothing
    status, base = _pytest(copy_root, tests, timeout=600)
    if status != "survived":
        target.write_text(original)
        raise SystemExit(f"{module}: the unmutated tests do not pass ({status}); fix that first")
    limit = max(20.0, timeout_factor * base)
    outcomes = []
    chosen = _spread(mutants(module), cap)
    try:
        for k, mut in enumerate(chosen, 1):
            target.write_text(mutant_source(module, mut.index))
            status, seconds = _pytest(copy_root, tests, limit)
            outcomes.append(Outcome(mut, status, seconds))
            print(f"  [{k}/{len(chosen)}] {status:8s} {module}:{mut.line} {mut.before} -> "
                  f"{mut.after}", flush=True)
    finally:
        target.write_text(original)
    return outcomes, base


def _check_copy_is_imported(copy_root: Path) -> None:
    env = dict(os.environ, PYTHONPATH=f"{copy_root}{os.pathsep}{ROOT}")
    code = f"import sys; sys.path.insert(0, {str(copy_root)!r}); import {PACKAGE}; " \
        f"print({PACKAGE}.__file__)"
    found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    if not found.startswith(str(copy_root)):
        raise SystemExit(f"the copy is not the package pytest imports ({found}); "
                         "is rul_core installed non-editable?")


def report(results: dict[str, list[Outcome]], seconds: float, cap: int | None) -> str:
    """The Markdown summary: a table per module, then every survivor with its verdict."""
    lines = [
        "# Mutation audit of the numeric core (bench/mutation_audit.py)",
        "",
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores "
        f"(shared), Python {platform.python_version()}; audit time {seconds / 60:.1f} min"
        + (f"; at most {cap} mutants per module" if cap else ""),
        "",
        "A mutant is killed when a mapped test fails (or the mutated module no longer "
        "imports), survived when every test passes. Equivalent: a survivor that no input can "
        "distinguish from the original (reason below). Gap: any other survivor. The state "
        "before the tests that close the gaps: mutation_audit_before.md.",
        "",
        "| module | tests | mutants | killed | timeout | survived | equivalent | gap |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for module, outs in results.items():
        count = {s: sum(o.status == s for o in outs) for s in ("killed", "timeout", "survived")}
        equiv = sum(o.status == "survived" and o.mutant.key in EQUIVALENT for o in outs)
        tests = ", ".join(Path(t).name for t in MODULES[module])
        lines.append(f"| {module}.py | {tests} | {len(outs)} | {count['killed']} | "
                     f"{count['timeout']} | {count['survived']} | {equiv} | "
                     f"{count['survived'] - equiv} |")
    lines += ["", "## Survivors", ""]
    for module, outs in results.items():
        survivors = [o for o in outs if o.status == "survived"]
        if not survivors:
            continue
        lines += [f"### {module}.py", "", "| line | function | mutant | verdict |",
                  "|---:|---|---|---|"]
        for o in survivors:
            m = o.mutant
            verdict = (f"equivalent: {EQUIVALENT[m.key]}" if m.key in EQUIVALENT
                       else "**gap: no test notices**")
            mutant = f"`{m.before}` -> `{m.after}`".replace("|", "\\|")
            lines.append(f"| {m.line} | {m.function} | {mutant} | {verdict} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES),
                        help="audit only this module (repeatable; default: all)")
    parser.add_argument("--max-mutants", type=int, default=None,
                        help="at most this many mutants per module, spread over the file")
    parser.add_argument("--timeout-factor", type=float, default=5.0,
                        help="a mutant times out after this many times the clean test run")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/mutation_audit.md")
    args = parser.parse_args(argv)
    modules = args.module or list(MODULES)
    if args.list:
        for module in modules:
            for m in _spread(mutants(module), args.max_mutants):
                print(f"{m.module}:{m.line}\t{m.key}")
        return 0
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # forking a process with BLAS threads can hang
    start = time.perf_counter()
    results: dict[str, list[Outcome]] = {}
    with tempfile.TemporaryDirectory(prefix="mutation_audit_") as tmp:
        copy_root = Path(tmp)
        shutil.copytree(ROOT / PACKAGE, copy_root / PACKAGE,
                        ignore=shutil.ignore_patterns("__pycache__"))
        _check_copy_is_imported(copy_root)
        _warm_up()
        for module in modules:
            print(f"{module}: {', '.join(MODULES[module])}", flush=True)
            results[module], base = audit_module(module, copy_root, args.max_mutants,
                                                 args.timeout_factor)
            print(f"  clean run {base:.1f} s", flush=True)
    seconds = time.perf_counter() - start
    text = report(results, seconds, args.max_mutants)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    unexplained = sum(o.status == "survived" and o.mutant.key not in EQUIVALENT
                      for outs in results.values() for o in outs)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
