"""Helpers for the book's notebooks that must also work outside the book (Colab, plain Jupyter)."""

from __future__ import annotations

from typing import Any


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Store ``value`` under ``name`` for the prose (myst-nb's ``{glue:text}`name:.2f```).

    In the HTML build myst-nb inserts the computed value into the text, so numbers in
    the prose are never typed by hand. Where myst-nb is absent (Colab) this is a no-op.
    Returns ``value`` so it can be used inline.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()  # numpy/torch scalars: myst-nb formats plain numbers only
    _glue(name, value, display=display)
    return value


def show_source(obj: Any) -> Any:
    """Show the package's real source code for ``obj`` (a class, function or module).

    The book displays the code it runs instead of keeping a second copy in the
    notebooks, so the text can never drift from the implementation. Returns an
    ``IPython.display.Code`` object (syntax-highlighted in notebooks and in the HTML book).
    """
    import inspect

    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")
