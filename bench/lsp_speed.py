"""Diagnostics from `mlopsc lsp` for a 1000-step spec, against `mlopsc check` of it as a process.

    .venv/bin/python bench/lsp_speed.py [--steps 1000] [--runs 9]

An editor keeps one server running; each edit is one `textDocument/didChange` (a one-character
change, as typing sends) and the diagnostics come back as `textDocument/publishDiagnostics` for
that version. The time measured is from sending the change to receiving its diagnostics, through a
real LSP client (pygls) over stdio. Beside it, `mlopsc check FILE` as a new process (what an
editor without a server would run on save), after one warm-up run for lark's grammar cache. Also
timed: a burst of 10 changes sent at once, until the diagnostics of the last one (the server
analyses the newest text, not every keystroke). Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_spec import generate

RUN_CLI = "import sys; from mlopsc.backends.cli import main; sys.argv[0] = 'mlopsc'; main()"


def check_process(spec: Path, runs: int) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    subprocess.run([sys.executable, "-c", RUN_CLI, "check", str(spec)], check=True, capture_output=True)
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", RUN_CLI, "check", str(spec)], check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


class Timer:
    """A pygls client that records when the diagnostics of each version arrive."""

    def __init__(self) -> None:
        from lsprotocol import types
        from pygls.lsp.client import LanguageClient

        self.types = types
        self.client = LanguageClient("bench", "1")
        self.arrived: dict[int, float] = {}
        self.counts: dict[int, int] = {}
        self.event = asyncio.Event()

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params) -> None:
            self.arrived[params.version] = time.perf_counter()
            self.counts[params.version] = len(params.diagnostics)
            self.event.set()

    async def until(self, version: int) -> float:
        while version not in self.arrived:
            self.event.clear()
            await asyncio.wait_for(self.event.wait(), 120)
        return self.arrived[version]


async def server_latencies(spec: Path, runs: int) -> tuple[float, list[float], list[float], float, int]:
    """Seconds to the first diagnostics after opening; per edit, seconds and server CPU seconds;
    seconds for a burst of 10 edits, and how many of its versions were analysed."""
    timer = Timer()
    types, client = timer.types, timer.client
    await client.start_io(sys.executable, "-c", RUN_CLI, "lsp", "--stdio")
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
    client.initialized(types.InitializedParams())
    uri, text = spec.as_uri(), spec.read_text(encoding="utf-8")
    start = time.perf_counter()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="mlops", version=1, text=text)))
    first = await timer.until(1) - start
    # The spec's first split: `seed = 0` -> 1 -> 0 ..., a one-character edit.
    line = next(i for i, row in enumerate(text.splitlines()) if "split split_0" in row)
    column = text.splitlines()[line].index("seed = ") + len("seed = ")
    where = types.Range(start=types.Position(line=line, character=column),
                        end=types.Position(line=line, character=column + 1))
    version, latencies, cpus = 1, [], []

    def change(digit: str) -> int:
        nonlocal version
        version += 1
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangePartial(range=where, text=digit)]))
        return version

    for run in range(runs):
        cpu_before = _cpu_of(client._server.pid)
        sent = time.perf_counter()
        latencies.append(await timer.until(change(str((run + 1) % 2))) - sent)
        cpus.append(_cpu_of(client._server.pid) - cpu_before)
        assert timer.counts[version] == 0, "the generated spec should have no diagnostics"
    sent, before = time.perf_counter(), version
    for digit in "1010101010":
        last = change(digit)
    burst = await timer.until(last) - sent
    analysed = sum(1 for v in timer.arrived if v > before)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return first, latencies, cpus, burst, analysed


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / f"bench_{args.steps}.mlops"
        spec.write_text(generate(args.steps), encoding="utf-8")
        check_walls, check_cpus = check_process(spec, args.runs)
        first, latencies, cpus, burst, analysed = asyncio.run(server_latencies(spec, args.runs))
    check, lsp = statistics.median(check_walls), statistics.median(latencies)
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {args.steps} steps, median of {args.runs} runs, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| what | wall (s) | CPU (s) | vs `mlopsc check` (wall) |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| `mlopsc check` as a process | {check:.3f} | {statistics.median(check_cpus):.3f} | 1.00x |")
    print(f"| `mlopsc lsp`: open the document -> its diagnostics (once) | {first:.3f} | | {first / check:.2f}x |")
    print(f"| `mlopsc lsp`: one edit -> its diagnostics | {lsp:.3f} | {statistics.median(cpus):.3f} | "
          f"{lsp / check:.2f}x |")
    print(f"| `mlopsc lsp`: 10 edits at once -> diagnostics of the last ({analysed} of them analysed) | {burst:.3f} | "
          f"| {burst / check:.2f}x |")


if __name__ == "__main__":
    main()
