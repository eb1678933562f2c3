"""The type stub of the native module (rnnstab_cli/_engine.pyi) says what the built module has:
the same functions, classes, methods and constants, with the same parameter names, order,
defaults and keyword-only markers. A binding change that the stub does not follow fails here,
not in a type checker's silence."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any, get_args, get_type_hints

import pytest

from rnnstab_cli import _engine
from rnnstab_cli.engine_options import TrainerOptions

STUB = Path(_engine.__file__).with_name("_engine.pyi")


def _params(fn: ast.FunctionDef) -> list[tuple[str, Any, bool]]:
    """(name, default, keyword-only) of a stub function's parameters; defaults as Python
    values."""
    args = fn.args.args
    defaults: list[Any] = [inspect.Parameter.empty] * (len(args) - len(fn.args.defaults))
    defaults += [ast.literal_eval(d) for d in fn.args.defaults]
    positional = [(a.arg, d, False) for a, d in zip(args, defaults, strict=True)]
    kw_defaults = [
        inspect.Parameter.empty if d is None else ast.literal_eval(d) for d in fn.args.kw_defaults
    ]
    keyword = [(a.arg, d, True) for a, d in zip(fn.args.kwonlyargs, kw_defaults, strict=True)]
    return [p for p in positional + keyword if p[0] != "self"]


def _runtime(obj: Any) -> list[tuple[str, Any, bool]]:
    return [
        (p.name, p.default, p.kind is inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(obj).parameters.values()
    ]


def _stub() -> ast.Module:
    return ast.parse(STUB.read_text(encoding="utf-8"))


def _functions() -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in _stub().body if isinstance(n, ast.FunctionDef)}


def _trainer() -> ast.ClassDef:
    (cls,) = [n for n in _stub().body if isinstance(n, ast.ClassDef) and n.name == "Trainer"]
    return cls


@pytest.mark.parametrize("name", sorted(_functions()))
def test_each_stub_function_matches_the_module(name: str) -> None:
    assert _params(_functions()[name]) == _runtime(getattr(_engine, name))


def test_the_module_has_nothing_the_stub_lacks() -> None:
    stub = _stub()
    declared = {n.name for n in stub.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    declared |= {
        n.target.id
        for n in stub.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    public = {n for n in dir(_engine) if not n.startswith("_") or n == "__version__"}
    assert public - declared == set()
    assert declared - public <= {"Array", "Params", "Stats"}  # the stub's own aliases


def test_trainer_options_are_the_engines_in_its_order_with_defaults_of_their_types() -> None:
    """The stub's and the wrapper's constructor take ``**TrainerOptions``: the one declaration
    of the options must name the native signature's keyword-only parameters, in order, and each
    default there must have the option's declared type."""
    ((first, default, keyword), *options) = _runtime(_engine.Trainer)
    assert (first, default, keyword) == ("params", inspect.Parameter.empty, False)
    hints = get_type_hints(TrainerOptions)
    assert [name for name, _, _ in options] == list(hints)
    for name, default, keyword in options:
        assert keyword, name
        hint = hints[name]
        types = get_args(hint) or (hint,)  # `int | None` → (int, NoneType)
        assert isinstance(default, types), (name, default, hint)
        # bool is an int: an int option must not default to True/False, nor a bool to 0/1.
        assert (bool in types) == isinstance(default, bool), (name, default)
    (init,) = [f for f in _trainer().body if isinstance(f, ast.FunctionDef)][:1]
    assert init.name == "__init__" and init.args.kwarg is not None
    assert ast.unparse(init.args.kwarg.annotation or ast.Constant(None)) == (
        "Unpack[TrainerOptions]"
    )


def test_trainer_methods_match() -> None:
    cls = _trainer()
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}
    runtime = {m for m in dir(_engine.Trainer) if not m.startswith("_")}
    assert set(methods) - {"__init__"} == runtime
    for name, fn in methods.items():
        member = getattr(_engine.Trainer, name, None)
        if name == "__init__" or not callable(member) or isinstance(member, property):
            continue
        if any(isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list):
            continue
        assert _params(fn) == _runtime(member)[1:], name  # the runtime lists `self` first
