"""Measuring instrument of hwnas: run a profiling kit on one runtime and record latencies.

The package owns two file formats (the kit manifest and ``measurements.json``, see
:mod:`profilers.formats`), one backend Protocol with one module per runtime
(:mod:`profilers.base`), one measurement protocol shared by all backends
(:mod:`profilers.protocol`) and the board-side runner ``python -m profilers``.

It imports none of the other hwnas packages and, at import, nothing but the standard
library: every runtime is imported inside the backend module that uses it, so a board
needs only numpy, pydantic and the one runtime it measures with.
"""
