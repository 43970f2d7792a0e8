"""The pygls server: each LSP feature is a thin adapter from the protocol to the modules beside it.

Analysis (parse + passes, analysis.py) runs on one worker thread, newest text first: while a
large spec is analysed the event loop keeps answering, and edits made meanwhile are analysed
together once it is done (a spec typed faster than it is checked is not checked once per key).
One thread, because the passes keep a per-pipeline index in a module global.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from .. import __version__
from ..errors import SpecError
from . import navigation
from .analysis import Analysis, analyse
from .completion import complete
from .context import context_at
from .diagnostics import to_lsp
from .ranges import Positions

logger = logging.getLogger(__name__)
TRIGGERS = [".", "=", "(", "[", ",", ">", ":"]
REQUEST_FAILED = types.LSPErrorCodes.RequestFailed.value


class SpecServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("mlopsc", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.analyses: dict[str, Analysis] = {}
        self.pending: dict[str, asyncio.Task] = {}
        self.open: set[str] = set()
        self.analyser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlopsc-analysis")

    def refresh(self, uri: str) -> asyncio.Task:
        """Analyse the document until the analysis is of its latest version (one task per document)."""
        task = self.pending.get(uri)
        if task is None or task.done():
            task = self.pending[uri] = asyncio.ensure_future(self._analyse_latest(uri))
        return task

    async def _analyse_latest(self, uri: str) -> None:
        loop = asyncio.get_running_loop()
        while uri in self.open:
            doc = self.workspace.get_text_document(uri)
            done = self.analyses.get(uri)
            if done is not None and done.version == doc.version and done.text == doc.source:
                return
            file = doc.path or uri
            try:
                analysis = await loop.run_in_executor(self.analyser, analyse, doc.source, file, doc.version, done)
                diagnostics = to_lsp(analysis, uri, self.positions(analysis.text))
            except Exception as exc:  # noqa: BLE001 - a bug in the compiler: say so, keep serving
                self.report_bug("analysis", exc)
                analysis = Analysis(doc.version, doc.source, [], done.symbols if done else None, False, file)
                diagnostics = []
            self.analyses[uri] = analysis
            if uri in self.open:
                self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                    uri=uri, version=analysis.version, diagnostics=diagnostics))

    async def latest(self, uri: str) -> Analysis:
        """The analysis of the document as it is now (requests wait for it, never cancel it)."""
        if uri not in self.open:
            raise JsonRpcException(f"{uri} is not open", REQUEST_FAILED)
        await asyncio.shield(self.refresh(uri))
        return self.analyses[uri]

    def positions(self, text: str) -> Positions:
        return Positions(text, self.workspace.position_codec.impl)

    def report_bug(self, what: str, exc: Exception) -> None:
        """Logged in full on stderr (editors show it in the server's output), in one line to the
        client: no traceback in the editor's notifications."""
        logger.error("mlopsc lsp: %s failed", what, exc_info=exc)
        self.window_log_message(types.LogMessageParams(type=types.MessageType.Error,
                                                       message=f"mlopsc lsp: {what} failed: {exc!r}"))

    def closed(self, uri: str) -> None:
        self.open.discard(uri)
        self.analyses.pop(uri, None)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


def guarded(handler):
    """No traceback reaches the editor: a bug in a feature is logged (in full to the server's
    stderr, which editors show in the server's output) and answered with nothing.
    MLOPSC_DEBUG=1 lets it through as pygls reports it."""
    @functools.wraps(handler)
    async def run(ls: SpecServer, params):
        try:
            return await handler(ls, params)
        except JsonRpcException:
            raise
        except Exception as exc:
            if os.environ.get("MLOPSC_DEBUG"):
                raise
            ls.report_bug(handler.__name__, exc)
            return None
    return run


def build_server() -> SpecServer:
    server = SpecServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: SpecServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.open.add(params.text_document.uri)
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: SpecServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: SpecServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.closed(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=TRIGGERS))
    @guarded
    async def completion(ls: SpecServer, params: types.CompletionParams) -> types.CompletionList:
        # The text as it is now, with the pipeline of the newest analysis there is: completion does
        # not wait for the analysis of the keystroke that asked for it.
        uri = params.text_document.uri
        analysis = ls.analyses.get(uri) or await ls.latest(uri)
        text = ls.workspace.get_text_document(uri).source
        positions = ls.positions(text)
        offset = positions.offset(*positions.point(params.position))
        items = complete(context_at(text, offset), analysis.symbols, positions)
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @guarded
    async def hover(ls: SpecServer, params: types.HoverParams) -> types.Hover | None:
        analysis = await ls.latest(params.text_document.uri)
        if not analysis.current:
            return None
        positions = ls.positions(analysis.text)
        return navigation.hover(analysis.symbols, *positions.point(params.position), positions)

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @guarded
    async def definition(ls: SpecServer, params: types.DefinitionParams) -> types.Location | None:
        analysis = await ls.latest(params.text_document.uri)
        if not analysis.current:
            return None
        positions = ls.positions(analysis.text)
        span = navigation.definition(analysis.symbols, *positions.point(params.position))
        return types.Location(uri=params.text_document.uri, range=positions.range(span)) if span else None

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded
    async def document_symbol(ls: SpecServer, params: types.DocumentSymbolParams) -> list | None:
        analysis = await ls.latest(params.text_document.uri)
        if analysis.symbols is None:
            return None
        # A version that does not parse shows the outline of the last one that did.
        return navigation.outline(analysis.symbols, ls.positions(analysis.text))

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    @guarded
    async def formatting(ls: SpecServer, params: types.DocumentFormattingParams) -> list | None:
        from ..fmt import format_spec

        analysis = await ls.latest(params.text_document.uri)
        try:
            formatted = format_spec(analysis.text, analysis.file)
        except SpecError:
            return None         # the diagnostics already say why
        if formatted == analysis.text:
            return []
        positions = ls.positions(analysis.text)
        whole = types.Range(start=types.Position(line=0, character=0), end=positions.at(len(analysis.text)))
        return [types.TextEdit(range=whole, new_text=formatted)]

    @server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    @guarded
    async def prepare_rename(ls: SpecServer, params: types.PrepareRenameParams) -> types.Range | None:
        _, target, positions = await _rename_target(ls, params.text_document.uri, params.position)
        return positions.range(target.span)

    @server.feature(types.TEXT_DOCUMENT_RENAME, types.RenameOptions(prepare_provider=True))
    @guarded
    async def rename(ls: SpecServer, params: types.RenameParams) -> types.WorkspaceEdit:
        analysis, target, positions = await _rename_target(ls, params.text_document.uri, params.position)
        problem = navigation.rename_problem(analysis.symbols, target, params.new_name)
        if problem is not None:
            raise JsonRpcException(problem, REQUEST_FAILED)
        edits = [types.TextEdit(range=positions.range(span), new_text=params.new_name)
                 for span in navigation.occurrences(analysis.symbols, target)]
        return types.WorkspaceEdit(changes={params.text_document.uri: edits})

    return server


async def _rename_target(ls: SpecServer, uri: str, position: types.Position):
    analysis = await ls.latest(uri)
    if not analysis.current:
        raise JsonRpcException("the spec does not parse: fix its syntax errors to rename", REQUEST_FAILED)
    positions = ls.positions(analysis.text)
    target = navigation.target_at(analysis.symbols, *positions.point(position))
    if target is None or target.what == "estimator":
        raise JsonRpcException("only a step or a param can be renamed", REQUEST_FAILED)
    return analysis, target, positions
