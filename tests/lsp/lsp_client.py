"""An editor for the tests: pygls's LanguageClient driving `mlopsc lsp --stdio`. It sends what an
editor sends and collects what the server publishes. The client's event loop runs on its own
thread, so tests stay plain functions; every call has a timeout.

The server dies with the test run: it exits when its stdin closes, and it is started with
PR_SET_PDEATHSIG (SIGTERM when pytest dies, even by kill -9).
"""
from __future__ import annotations

import asyncio
import ctypes
import signal
import threading
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

REPO = Path(__file__).resolve().parents[2]
RUN_CLI = "import sys; from mlopsc.backends.cli import main; sys.argv[0] = 'mlopsc'; main()"
TIMEOUT = 60.0      # a failure detector only: the machine is shared


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


class Editor:
    """What an editor does: open, change and close documents, ask for features, and collect the
    diagnostics the server publishes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.client = LanguageClient("mlopsc-tests", "1")
        self.published: dict[str, types.PublishDiagnosticsParams] = {}
        self.logged: list[str] = []
        self.changed = threading.Condition()
        self.versions: dict[str, int] = {}

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def diagnostics(params: types.PublishDiagnosticsParams) -> None:
            with self.changed:
                self.published[params.uri] = params
                self.changed.notify_all()

        @self.client.feature(types.WINDOW_LOG_MESSAGE)
        def log(params: types.LogMessageParams) -> None:
            self.logged.append(params.message)

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(TIMEOUT)

    def notify(self, method, params) -> None:
        self.loop.call_soon_threadsafe(method, params)

    def start(self, *command: str) -> types.InitializeResult:
        self.run(self.client.start_io(*command, preexec_fn=_die_with_parent))
        result = self.run(self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=REPO.as_uri())))
        self.notify(self.client.initialized, types.InitializedParams())
        return result

    def stop(self) -> int:
        """Shut the server down as an editor does; its exit code."""
        self.run(self.client.shutdown_async(None))
        self.notify(self.client.exit, None)
        self.run(self.client.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        return self.client._server.returncode

    # ------------------------------------------------------------ documents
    def open(self, uri: str, text: str) -> list[types.Diagnostic]:
        self.versions[uri] = 1
        self.notify(self.client.text_document_did_open, types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="mlops", version=1, text=text)))
        return self.diagnostics(uri, 1)

    def change(self, uri: str, text: str) -> list[types.Diagnostic]:
        """Replace the whole text (as an editor may), and wait for the diagnostics of that version."""
        version = self.versions[uri] = self.versions[uri] + 1
        self.notify(self.client.text_document_did_change, types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
        return self.diagnostics(uri, version)

    def close(self, uri: str) -> list[types.Diagnostic]:
        self.notify(self.client.text_document_did_close, types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        return self.diagnostics(uri, None)

    def diagnostics(self, uri: str, version: int | None) -> list[types.Diagnostic]:
        with self.changed:
            found = self.changed.wait_for(lambda: uri in self.published and self.published[uri].version == version,
                                          TIMEOUT)
            assert found, f"no diagnostics for {uri} version {version}"
            return list(self.published.pop(uri).diagnostics)


    # ------------------------------------------------------------ requests
    def completion(self, uri: str, position: types.Position) -> list[types.CompletionItem]:
        result = self.run(self.client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position)))
        return list(result.items if isinstance(result, types.CompletionList) else result or [])

    def labels(self, uri: str, position: types.Position) -> list[str]:
        return [item.label for item in self.completion(uri, position)]

    def hover(self, uri: str, position: types.Position) -> types.Hover | None:
        return self.run(self.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position)))

    def definition(self, uri: str, position: types.Position):
        return self.run(self.client.text_document_definition_async(types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position)))

    def symbols(self, uri: str) -> list[types.DocumentSymbol]:
        return self.run(self.client.text_document_document_symbol_async(types.DocumentSymbolParams(
            text_document=types.TextDocumentIdentifier(uri=uri))))

    def formatting(self, uri: str) -> list[types.TextEdit] | None:
        return self.run(self.client.text_document_formatting_async(types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            options=types.FormattingOptions(tab_size=2, insert_spaces=True))))

    def prepare_rename(self, uri: str, position: types.Position):
        return self.run(self.client.text_document_prepare_rename_async(types.PrepareRenameParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position)))

    def rename(self, uri: str, position: types.Position, new_name: str) -> types.WorkspaceEdit:
        return self.run(self.client.text_document_rename_async(types.RenameParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=position, new_name=new_name)))


def at(text: str, needle: str, into: int = 0, nth: int = 0) -> types.Position:
    """The position `into` characters into the nth occurrence of `needle`: where a user's cursor is."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    offset = start + into
    line = text.count("\n", 0, offset)
    return types.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))


def apply(text: str, edits: list[types.TextEdit]) -> str:
    """The text after an editor applies the edits (last first, so earlier ranges stay valid)."""
    lines = text.split("\n")
    starts = [sum(len(row) + 1 for row in lines[:i]) for i in range(len(lines))]
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        start = starts[edit.range.start.line] + edit.range.start.character
        end = starts[min(edit.range.end.line, len(lines) - 1)] + edit.range.end.character
        text = text[:start] + edit.new_text + text[end:]
    return text
