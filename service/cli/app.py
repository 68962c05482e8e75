"""Root of the `hwnas` CLI and its error handling.

Every expected failure (unknown space, malformed arch string, an op not allowed in a
slot, a bad parameter or path) ends as one line on stderr, `error: ...`, and exit code
2; a traceback means a bug.
"""

from __future__ import annotations

import sys

import click
import typer

from profilers.errors import ProfilerError
from spaces import ArchError, UnknownSpaceError

from . import (
    admin_cmd,
    build_cmd,
    kit_cmd,
    predictor_cmd,
    profile_cmd,
    score_cmd,
    search_cmd,
    serve_cmd,
    spaces_cmd,
    supernet_cmd,
    train_cmd,
)

app = typer.Typer(
    name="hwnas",
    help="Hardware-aware neural architecture search: spaces, networks, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(spaces_cmd.app, name="spaces")
app.command("build")(build_cmd.build)
app.command("kit")(kit_cmd.kit)
app.command("profile")(profile_cmd.profile)
app.add_typer(predictor_cmd.app, name="predictor")
app.command("predict")(predictor_cmd.predict)
app.command("search")(search_cmd.search)
app.command("serve")(serve_cmd.serve)
app.add_typer(admin_cmd.app, name="admin")
app.command("score")(score_cmd.score)
app.add_typer(supernet_cmd.app, name="supernet")
app.command("train")(train_cmd.train)


class CLIError(Exception):
    """A user error the CLI reports as one line."""


EXPECTED = (ArchError, UnknownSpaceError, ValueError, FileNotFoundError, CLIError,
            ProfilerError)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hwnas` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # The command line travels to the commands (model cards quote it to reproduce a run).
        app(args=args, standalone_mode=False, prog_name="hwnas", obj={"argv": args})
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except EXPECTED as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
