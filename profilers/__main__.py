"""``python -m profilers``: the board-side runner (see :mod:`profilers.runner`)."""

from __future__ import annotations

import sys

from profilers.runner import main

if __name__ == "__main__":
    sys.exit(main())
