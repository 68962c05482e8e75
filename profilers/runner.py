"""The board-side runner: measure every entry of a kit on one backend, write measurements.json.

``python -m profilers run kit.zip --backend tflite -o measurements.json`` reads the kit,
loads its models on the chosen runtime with fixed threads/precision/device, measures them
with :func:`profilers.protocol.measure_many` in chunks (the whole architectures spread
evenly among the LUT entries), and saves after every chunk. Chunks timed while the machine
was slow (their reference cell, or the whole-arch probe timed at their start and end, more
than ``--slow-above`` slower than at its quietest) are timed again after a pause, up to
``--retries`` passes, keeping each entry's quieter record. Running the same command again
resumes: entries already in the output are not measured again. An output written with
another kit or other settings is never touched.

It imports the standard library, numpy, pydantic and the one runtime it measures with,
nothing else (no torch, no other hwnas package), so it runs on an edge board. Every
expected failure is one line ``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TextIO

import numpy as np
from pydantic import ValidationError

from profilers.base import Backend, Runner, get_backend, list_backends
from profilers.errors import BackendError, MeasurementsError, ModelLoadError, ProfilerError
from profilers.formats import (
    BackendSettings,
    HostInfo,
    KitEntry,
    KitManifest,
    KitRef,
    Measurement,
    MeasurementsFile,
    ProtocolSettings,
    load_measurements,
    read_kit,
    read_manifest,
    save_measurements,
)
from profilers.probes import (
    Probes,
    arch_probe,
    probe_entry,
    quietest_levels,
    reference_entry,
    slow_entries,
    slowness,
)
from profilers.progress import ProgressPrinter
from profilers.protocol import ReferenceProbe, Stats, measure_many
from profilers.schema import describe_validation_error

__all__ = ["build_parser", "main", "run_kit"]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
# Other load on a shared machine or a board only ever adds time, and it comes in spells
# that drift correction by the reference cell undoes only partly: a busy neighbour can slow
# a whole arch (weights beyond the caches) by a third while the small reference cell runs
# as fast as ever, so a whole arch of the kit is timed at each chunk's start and end too.
# Chunks where either probe ran this far above its quietest level are timed again after a
# pause, and each entry keeps its record from the quieter machine.
SLOW_ABOVE = 0.15
RETRIES = 2
SETTLE_S = 20.0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``error: ...`` line like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m profilers`` command line."""
    defaults = ProtocolSettings()
    parser = _Parser(prog="python -m profilers", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("backends", help="list backends, whether they run here, and why not")
    run = commands.add_parser("run", help="measure every entry of a kit")
    run.add_argument("kit", type=Path, help="kit zip (manifest.json + model files)")
    run.add_argument("--backend", required=True, help="onnxruntime, openvino, tflite or torch")
    run.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    run.add_argument(
        "--precision", choices=("fp32", "fp16", "bf16", "int8"), help="default: the kit's"
    )
    run.add_argument("--device", help="CPU by default; e.g. GPU, NPU (openvino), cuda:0")
    run.add_argument("--delegate", type=Path, help="TFLite external delegate library (.so)")
    run.add_argument(
        "--runs", type=int, default=defaults.runs, help=f"timed runs per entry ({defaults.runs})"
    )
    run.add_argument("--rounds", type=int, help=f"interleaved rounds ({defaults.rounds}, <= runs)")
    run.add_argument("--budget-s", type=float, help="timed inference budget of the whole kit")
    run.add_argument(
        "--max-cv", type=float, default=defaults.max_cv, help="re-measure above this robust CV"
    )
    run.add_argument(
        "--chunk", type=int, default=32, help="entries interleaved, then saved, together (32)"
    )
    run.add_argument("--reference", help="key of the reference cell (default: the first cell)")
    run.add_argument(
        "--retries", type=int, default=RETRIES,
        help=f"passes re-measuring chunks timed while the machine was slow ({RETRIES})",
    )
    run.add_argument(
        "--slow-above", type=float, default=SLOW_ABOVE,
        help=f"a chunk is slow when its reference level is this fraction above the run's "
        f"quietest ({SLOW_ABOVE})",
    )
    run.add_argument(
        "--settle-s", type=float, default=SETTLE_S,
        help=f"seconds to wait before each re-measuring pass ({SETTLE_S:g})",
    )
    run.add_argument(
        "-o", "--output", type=Path, default=Path("measurements.json"), help="measurements file"
    )
    run.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue an output of the same kit and settings (never overwritten otherwise)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress on stderr")
    run.add_argument("--upload", metavar="URL", help="then POST the file to this hwnas service")
    run.add_argument("--token", help="API token for --upload (default: $HWNAS_TOKEN)")
    run.add_argument("--device-id", dest="upload_device", type=int, metavar="ID",
                     help="service device id the file is uploaded to (with --upload)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m profilers``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "backends":
            return _print_backends(sys.stdout)
        _check_upload_args(args)
        code = run_kit(args)
        if code == 0 and args.upload is not None:
            _upload(args)
        return code
    except ProfilerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _check_upload_args(args: argparse.Namespace) -> None:
    if args.upload is None:
        return
    args.token = args.token or os.environ.get("HWNAS_TOKEN")
    if not args.token or args.upload_device is None:
        raise ProfilerError("--upload needs --token (or $HWNAS_TOKEN) and --device-id ID")


def _upload(args: argparse.Namespace) -> None:
    """POST the finished file; the file stays on disk whatever happens (see upload.py)."""
    from profilers.upload import upload_measurements

    answer = upload_measurements(args.output, url=args.upload, token=args.token,
                                 device=args.upload_device)
    if not args.quiet:
        print(f"uploaded {args.output}: {answer.get('added')} added, "
              f"{answer.get('improved')} improved, {answer.get('kept')} kept", file=sys.stderr)


def _print_backends(out: TextIO) -> int:
    for info in list_backends():
        state = f"yes  {info.version}" if info.available else f"no   {info.reason}"
        print(f"{info.name:<12} {state}", file=out)
    return 0


def _protocol(args: argparse.Namespace, entries: int) -> ProtocolSettings:
    budget_ms = args.budget_s * 1000 / entries if args.budget_s is not None else None
    defaults = ProtocolSettings()
    try:
        return ProtocolSettings(
            runs=args.runs,
            min_runs=min(defaults.min_runs, args.runs),
            rounds=args.rounds if args.rounds is not None else min(defaults.rounds, args.runs),
            budget_ms=budget_ms,
            max_cv=args.max_cv,
        )
    except ValidationError as exc:
        raise ProfilerError(f"invalid protocol setting: {describe_validation_error(exc)}") from exc


@contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """Send file descriptor 2 to a scratch file: runtimes log to it from C++ when loading."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _existing_output(path: Path, resume: bool) -> MeasurementsFile | None:
    if not path.exists():
        return None
    if not resume:
        raise MeasurementsError(f"{path} exists; choose another -o (it is never overwritten)")
    try:
        return load_measurements(path)
    except MeasurementsError as exc:
        raise MeasurementsError(f"cannot resume: {exc}; move it away or choose another -o") from exc


def _differences(old: MeasurementsFile, new: MeasurementsFile) -> list[str]:
    """What differs between a file being resumed and this run (empty: same run)."""
    pairs = [("kit", old.kit.manifest_sha256[:12], new.kit.manifest_sha256[:12])]
    for model_old, model_new in ((old.settings, new.settings), (old.protocol, new.protocol)):
        for name in type(model_old).model_fields:
            pairs.append((name, getattr(model_old, name), getattr(model_new, name)))
    for name in ("cpu", "cores", "machine"):
        pairs.append((f"host {name}", getattr(old.host, name), getattr(new.host, name)))
    return [f"{name} {a} != {b}" for name, a, b in pairs if a != b]


def _chunks(entries: Sequence[KitEntry], size: int) -> list[list[KitEntry]]:
    """Consecutive chunks of ``size`` entries, with the archs spread evenly among the cells.

    Every arch is then measured in the same stretch of time (the same machine load) as a
    slice of the cells, rather than all archs at the end under other conditions, so a
    predictor's error against them is not skewed by a change of load.
    """
    merged = [entry for entry in entries if entry.kind != "arch"]
    archs = [entry for entry in entries if entry.kind == "arch"]
    for index, arch in enumerate(archs):
        merged.insert(int((index + 0.5) * len(entries) / len(archs)), arch)
    return [merged[start : start + size] for start in range(0, len(merged), size)]


class _Loader:
    """Loads kit entries on one backend with the run's settings, muting runtime chatter."""

    def __init__(self, backend: Backend, folder: Path, args: argparse.Namespace, precision: str):
        self._backend, self._folder, self._args = backend, folder, args
        self.precision = precision

    def __call__(self, entry: KitEntry) -> Runner:
        try:
            with _native_stderr_muted():
                return self._backend.load(
                    self._folder / entry.file,
                    threads=self._args.threads,
                    precision=self.precision,
                    device=self._args.device,
                    delegate=self._args.delegate,
                    input_shape=entry.input_shape,
                )
        except ModelLoadError as exc:
            raise ModelLoadError(f"{exc} (kit entry {entry.key!r})") from exc


def run_kit(args: argparse.Namespace) -> int:
    """``python -m profilers run``: measure a kit, saving after every chunk.

    Raises:
        ProfilerError: Any bad input (kit, backend, settings, existing output).
    """
    backend = get_backend(args.backend)
    manifest = read_manifest(args.kit)
    if manifest.format not in backend.formats:
        raise BackendError(
            f"backend {backend.name} reads {' or '.join(backend.formats)} kits; "
            f"{args.kit} holds {manifest.format} files"
        )
    protocol = _protocol(args, len(manifest.entries))
    if args.chunk < 1:
        raise ProfilerError(f"--chunk must be >= 1, got {args.chunk}")
    if args.retries < 0:
        raise ProfilerError(f"--retries must be >= 0, got {args.retries}")
    if not args.slow_above > 0:
        raise ProfilerError(f"--slow-above must be > 0, got {args.slow_above}")
    if not args.settle_s >= 0:
        raise ProfilerError(f"--settle-s must be >= 0, got {args.settle_s}")
    existing = _existing_output(args.output, args.resume)
    with tempfile.TemporaryDirectory(prefix="hwnas-kit-") as tmp:
        manifest, folder = read_kit(args.kit, tmp)
        load = _Loader(backend, folder, args, args.precision or manifest.precision)
        reference = reference_entry(manifest, existing, args.reference, load)
        probe = ReferenceProbe(load(reference))
        entry_of_probe = probe_entry(manifest, existing)
        arch = arch_probe(entry_of_probe, load)
        doc = MeasurementsFile(
            kit=KitRef.of(manifest),
            settings=BackendSettings(
                backend=backend.name,
                backend_version=backend.version(),
                device=probe.runner.device,
                threads=args.threads,
                precision=load.precision,
                delegate=str(args.delegate) if args.delegate is not None else None,
            ),
            protocol=protocol,
            host=HostInfo.current(),
            reference_key=reference.key,
            probe_key=entry_of_probe.key if arch is not None and entry_of_probe else None,
        )
        if existing is not None:
            differences = _differences(existing, doc)
            if differences:
                raise MeasurementsError(
                    f"{args.output} holds another run ({'; '.join(differences)}); "
                    "use the same kit and settings, or another -o"
                )
            doc = existing
        # The probes' series are the file's own lists: every median taken is saved with it.
        probe.medians_ms = doc.reference
        probes = Probes(probe, arch)
        if arch is not None:
            arch.medians_ms = doc.probe
        save_measurements(args.output, doc)  # claims the output (and checks it is writable)
        return _measure_kit(manifest, doc, load, probes, args)


def _measure_kit(
    manifest: KitManifest,
    doc: MeasurementsFile,
    load: _Loader,
    probes: Probes,
    args: argparse.Namespace,
) -> int:
    done = doc.keys()
    chunks = _chunks([e for e in manifest.entries if e.key not in done], args.chunk)
    order = {entry.key: index for index, entry in enumerate(manifest.entries)}
    # A finished run is not re-measured: resuming it only reports it again.
    retries = 0 if doc.complete else args.retries
    try:
        _measure_chunks(chunks, doc, load, probes, args, order)
        for _ in range(retries):
            quietest = quietest_levels(doc)
            slow = slow_entries(manifest, doc, quietest, args.slow_above)
            if not slow:
                break
            if not args.quiet:
                print(_slow_message(doc, slow, quietest, args), file=sys.stderr)
            time.sleep(args.settle_s)
            _measure_chunks(_chunks(slow, args.chunk), doc, load, probes, args, order)
    except KeyboardInterrupt:
        print(
            f"error: interrupted; {doc.count()} of {len(manifest.entries)} entries are saved in "
            f"{args.output}; run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    doc.complete = True
    save_measurements(args.output, doc)
    if not args.quiet:
        print(_summary(doc, args.output), file=sys.stderr)
    return 0


def _measure_chunks(
    chunks: list[list[KitEntry]],
    doc: MeasurementsFile,
    load: _Loader,
    probes: Probes,
    args: argparse.Namespace,
    order: dict[str, int],
) -> None:
    """Measure ``chunks`` one after another, saving ``doc`` after each.

    An entry measured before (a re-measuring pass) keeps whichever record was taken while
    the machine was quieter (`profilers.probes.slowness`).
    """
    steps = [len(chunk) * (1 + doc.protocol.rounds) for chunk in chunks]
    printer = ProgressPrinter(sys.stderr, planned=sum(steps), quiet=args.quiet)
    try:
        for chunk, planned in zip(chunks, steps, strict=True):
            printer.start_chunk(planned)
            runners = {entry.key: load(entry) for entry in chunk}
            first = len(probes.cell.medians_ms)
            runs = doc.protocol.reference_runs
            start = probes.arch.sample(runs) if probes.arch is not None else None
            stats = measure_many(
                runners, doc.protocol, progress=printer.update, reference=probes.cell
            )
            del runners
            printer.chunk_done()
            level = float(np.median(probes.cell.medians_ms[first:]))
            arch_level = None
            if probes.arch is not None and start is not None:
                arch_level = (start + probes.arch.sample(runs)) / 2
            old = {m.key: m for m in (*doc.cells, *doc.archs)}
            # One baseline for the whole chunk: the run's quietest levels so far or this
            # chunk's own, whichever is lower.
            run_cell, run_arch = quietest_levels(doc)
            quietest = (_lowest(level, run_cell), _lowest(arch_level, run_arch))
            for entry in chunk:
                record = _measurement(entry, stats[entry.key], doc, level, arch_level)
                previous = old.get(entry.key)
                listing = doc.archs if entry.kind == "arch" else doc.cells
                if previous is None:
                    listing.append(record)
                elif slowness(record, quietest) < slowness(previous, quietest):
                    listing[listing.index(previous)] = record
            doc.cells.sort(key=lambda m: order[m.key])
            doc.archs.sort(key=lambda m: order[m.key])
            save_measurements(args.output, doc)
    finally:
        printer.close()


def _lowest(*levels: float | None) -> float | None:
    return min((v for v in levels if v is not None), default=None)


def _slow_message(
    doc: MeasurementsFile,
    slow: list[KitEntry],
    quietest: tuple[float | None, float | None],
    args: argparse.Namespace,
) -> str:
    cell, arch = quietest
    quiet = f"reference {doc.reference_key} {cell:.3f} ms" if cell is not None else ""
    if arch is not None:
        quiet += f", probe {doc.probe_key} {arch:.3f} ms"
    return (
        f"re-measuring {len(slow)} entries timed while the machine was slow (a probe more "
        f"than {args.slow_above:.0%} above its quietest: {quiet}), after {args.settle_s:g} s"
    )


def _measurement(
    entry: KitEntry,
    stats: Stats,
    doc: MeasurementsFile,
    reference_ms: float,
    probe_ms: float | None,
) -> Measurement:
    settings = doc.settings
    return Measurement(
        key=entry.key,
        kind=entry.kind,
        backend=settings.backend,
        backend_version=settings.backend_version,
        device=settings.device,
        threads=settings.threads,
        precision=settings.precision,
        median_ms=stats.median_ms,
        p10_ms=stats.p10_ms,
        p90_ms=stats.p90_ms,
        mean_ms=stats.mean_ms,
        cv=stats.cv,
        runs=stats.runs,
        reference_ms=reference_ms,
        probe_ms=probe_ms,
        host=doc.host,
        timestamp=datetime.now(UTC),
    )


def _summary(doc: MeasurementsFile, output: Path) -> str:
    text = f"measured {len(doc.cells)} LUT entries and {len(doc.archs)} archs into {output}"
    if len(doc.reference) > 1:
        low, high = min(doc.reference), max(doc.reference)
        spread = (high - low) / sorted(doc.reference)[len(doc.reference) // 2]
        text += f"; reference {doc.reference_key}: {len(doc.reference)} medians spread {spread:.1%}"
    return text
