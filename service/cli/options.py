"""Options shared by several commands: the space and its parameters."""

from __future__ import annotations

from typing import Annotated

import typer

from spaces import Space, get_space, space_params

ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", metavar="KEY=VALUE",
                 help="Space parameter, e.g. -p resolution=32 -p width=0.5 -p classes=10."),
]


def parse_params(space: str, pairs: list[str] | None) -> dict[str, object]:
    """`KEY=VALUE` strings -> typed space parameters (typed like the parameter's default)."""
    defaults = space_params(space)
    out: dict[str, object] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {pair!r}: expected KEY=VALUE")
        if key not in defaults:
            raise ValueError(
                f"space {space!r} has no parameter {key!r} (it takes: {', '.join(defaults)})"
            )
        kind = type(defaults[key])
        try:
            out[key] = kind(raw)
        except ValueError:
            raise ValueError(
                f"--param {key}: expected {kind.__name__}, got {raw!r}"
            ) from None
    return out


def load_space(name: str, pairs: list[str] | None) -> Space:
    return get_space(name, **parse_params(name, pairs))


def command_line(ctx: typer.Context) -> str:
    """The `hwnas ...` command line being run, quoted for a shell."""
    import shlex

    argv = (ctx.find_root().obj or {}).get("argv", [])
    return shlex.join(["hwnas", *argv])
