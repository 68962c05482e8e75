"""`python -m service.cli` is the `hwnas` command."""

import sys

from .app import main

sys.exit(main())
