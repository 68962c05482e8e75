"""What every benchmark's result file shares: when, on which host, and how it is written.

The scripts run as ``python benchmarks/NAME.py``, which puts this folder on ``sys.path``,
so they import it as ``_report``; ``strategy_quality`` runs as a module from the repository
root and imports it as ``benchmarks._report``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from profilers.formats import HostInfo


def utc_now() -> str:
    """This moment in UTC, ISO 8601 to the second, e.g. ``2026-12-01T09:30:00+00:00``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def host_facts() -> dict[str, Any]:
    """This machine as a result's ``host`` records it.

    The profiling runner's :class:`~profilers.formats.HostInfo` (``cpu``, ``cores``,
    ``machine``, ``os``, ``python``) plus ``cpus``, ``os.cpu_count()``: older results carry
    that key, and ``cores`` counts only the CPUs this process may run on.
    """
    return {**HostInfo.current().model_dump(mode="json"), "cpus": os.cpu_count()}


def arguments(args: argparse.Namespace) -> dict[str, Any]:
    """A script's parsed arguments as a result records them (paths, alone or in a list, as
    strings)."""
    def plain(v: Any) -> Any:
        if isinstance(v, list):
            return [plain(x) for x in v]
        return str(v) if isinstance(v, Path) else v

    return {k: plain(v) for k, v in vars(args).items()}


def write_report(path: Path, payload: dict[str, Any], *, indent: int = 2,
                 default: Callable[[Any], Any] | None = None) -> None:
    """Write ``payload`` to ``path`` as JSON (folders created, trailing newline), say where.

    Args:
        path: The result file.
        payload: The result.
        indent: JSON indentation; the scripts whose results are large use 1.
        default: ``json.dumps``' converter for values JSON has no type for, e.g. ``float``
            for numpy scalars.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=indent, default=default) + "\n")
    print(f"wrote {path}")
