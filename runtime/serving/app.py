"""The ASGI app: routes, request checks and the order of work for one prediction.

    read the body (capped) -> check the bearer token -> take the model in service -> parse the
    protocol -> check the columns against the model -> wait for a batch -> answer -> queue the rows
    for the prediction log -> count

Everything before "wait for a batch" runs on the event loop and is cheap; the model runs on the
dispatcher's thread; the log is written by its own thread. `create_app(config)` builds one app;
`app_from_environment()` builds it from `$MLOPSC_SERVE_CONFIG` in each uvicorn worker process.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import mlflow_protocol, v2_protocol
from .batching import BatchDispatcher
from .inputs import Checked, InputError, batch_frame, check_columns, describe
from .metrics import ServerMetrics
from .model import LoadedModel, ModelHolder, load_version
from .prediction_log import FeedbackRows, PredictionLog, PredictionRows

log = logging.getLogger("mlopsc.serving")

CONFIG_ENV = "MLOPSC_SERVE_CONFIG"
LARGE_BODY = 64 * 1024          # bytes; larger bodies are parsed and checked off the event loop
REQUEST_ID = re.compile(r"[A-Za-z0-9._:/-]{1,128}")
MLFLOW_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 404: "RESOURCE_DOES_NOT_EXIST",
                409: "INVALID_STATE", 413: "REQUEST_LIMIT_EXCEEDED", 415: "BAD_REQUEST",
                500: "INTERNAL_ERROR", 503: "TEMPORARILY_UNAVAILABLE"}


@dataclass
class ServeConfig:
    """What one server process needs; JSON-able (handed to uvicorn workers through the environment).
    The bearer token itself is never in it: only the name of the variable that holds it."""
    model_name: str
    tracking_uri: str
    alias: str | None = "champion"      # None: a pinned `version`, not followed
    version: str | None = None
    log_uri: str | None = None          # None: no prediction log
    max_batch_size: int = 32
    max_batch_wait_ms: int = 5
    poll_interval: float = 5.0
    token_env: str | None = None
    max_request_bytes: int = 10 * 1024 * 1024
    flush_interval: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))


@dataclass
class Answered:
    model: LoadedModel
    request_id: str
    predictions: list[Any]
    probabilities: Any            # (rows, classes) ndarray or None


def _plain(values: Any) -> list[Any]:
    listed = values.tolist() if hasattr(values, "tolist") else list(values)
    return [v.item() if hasattr(v, "item") else v for v in listed]


def predict_batch(model: LoadedModel, batch: list[Checked]) -> list[tuple[Any, Any]]:
    """One model call for the requests of a batch; each request's predictions (and probabilities) back."""
    predicted, proba = model.predict(batch_frame(model, batch))
    out, start = [], 0
    for checked in batch:
        end = start + checked.rows
        out.append((predicted[start:end], None if proba is None else proba[start:end]))
        start = end
    return out


class Server:
    def __init__(self, config: ServeConfig, model: LoadedModel | None = None) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        self.holder = ModelHolder()
        self.preloaded = model
        self.token = self._token(config.token_env)
        self.dispatcher = BatchDispatcher(predict_batch, max_batch_size=config.max_batch_size,
                                          max_wait=config.max_batch_wait_ms / 1000, on_batch=self._batched)
        self.log: PredictionLog | None = None
        if config.log_uri:
            self.log = PredictionLog(config.log_uri, flush_interval=config.flush_interval,
                                     on_written=lambda s, n: self.metrics.log_written.labels(stream=s).inc(n),
                                     on_failed=lambda s, n, r: self.metrics.log_failed.labels(
                                         stream=s, reason=r).inc(n))
        self.watcher = None

    @staticmethod
    def _token(name: str | None) -> str | None:
        if not name:
            return None
        token = os.environ.get(name, "")
        if not token:
            raise ValueError(f"--token-env {name}: the variable is not set or empty")
        return token

    def _batched(self, requests: int, rows: int) -> None:
        self.metrics.batch_requests.observe(requests)
        self.metrics.batch_rows.observe(rows)

    # ------------------------------------------------------------ lifecycle
    def load(self, version: str) -> LoadedModel:
        return load_version(self.config.tracking_uri, self.config.model_name, version)

    def alias_holder(self) -> str | None:
        from mlopsc.runtime import registry, registry_lookup

        try:        # a poll without MLflow where the store allows (a SQLite query, one REST call)
            held = registry_lookup.holder(self.config.tracking_uri, self.config.model_name, self.config.alias)
            return None if held is None else held["version"]
        except registry_lookup.Unavailable:
            pass

        found = registry.version_by_alias(registry.client(self.config.tracking_uri), self.config.model_name,
                                          self.config.alias)
        return None if found is None else str(found.version)

    async def start(self) -> None:
        model = self.preloaded
        if model is None:
            version = self.config.version or await asyncio.to_thread(self.alias_holder)
            if version is None:
                raise RuntimeError(f"no version of {self.config.model_name!r} holds alias {self.config.alias!r}")
            model = await asyncio.to_thread(self.load, version)
        self.holder.swap(model)
        self.metrics.serving(model, self.config.alias)
        self.dispatcher.start()
        if self.log is not None:
            self.log.start()
        if self.config.alias and self.config.poll_interval > 0:
            from .watcher import RegistryWatcher

            self.watcher = RegistryWatcher(
                self.holder, holder_version=self.alias_holder, load=self.load,
                poll_interval=self.config.poll_interval, on_swap=self._swapped, on_failure=self._failed_load)
            self.watcher.start()

    def _swapped(self, model: LoadedModel) -> None:
        self.metrics.reloads.labels(result="success").inc()
        self.metrics.serving(model, self.config.alias)

    def _failed_load(self, version: str, why: str) -> None:
        self.metrics.reloads.labels(result="failure").inc()

    async def stop(self) -> None:
        if self.watcher is not None:
            await asyncio.to_thread(self.watcher.stop)
        await self.dispatcher.close()
        if self.log is not None:
            await asyncio.to_thread(self.log.close)

    # ------------------------------------------------------------ one prediction
    def authorize(self, request: Request) -> None:
        if self.token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise InputError("a bearer token is required", status=401, expected="Authorization: Bearer <token>",
                             found="a wrong token" if given else "no token")

    async def body(self, request: Request) -> bytes:
        cap = self.config.max_request_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            raise InputError("the request body is too large", status=413, expected=f"at most {cap} bytes",
                             found=f"{length} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise InputError("the request body is too large", status=413, expected=f"at most {cap} bytes",
                                 found=f"more than {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def model(self) -> LoadedModel:
        model = self.holder.current
        if model is None:
            raise InputError("no model is loaded yet", status=503)
        return model

    async def answer(self, request: Request, parse: Callable[[bytes, LoadedModel], tuple[Any, str | None]],
                     model: LoadedModel | None = None) -> Answered:
        """`model`: the version the request named (V2 versioned routes); else the one in service."""
        arrived, started = datetime.now(UTC), time.perf_counter()
        self.authorize(request)
        body = await self.body(request)
        model = model or self.model()

        def check() -> tuple[Checked, str | None]:
            try:
                columns, body_id = parse(body, model)
                return check_columns(model, columns), body_id
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 - a body no rule foresaw is still bad input, not a 500
                log.warning("a request body could not be read: %s: %s", type(exc).__name__, exc)
                raise InputError("the request could not be read", expected="a body as docs/serving.md shows",
                                 found=f"{type(exc).__name__}: {str(exc)[:200]}") from None

        # Checking is Python work per value: a large body is checked on a thread, so that the
        # event loop keeps answering the small requests meanwhile.
        checked, body_id = await asyncio.to_thread(check) if len(body) > LARGE_BODY else check()
        predicted, proba = await self.dispatcher.submit(model, checked, checked.rows)
        request_id = _request_id(request.headers.get("x-request-id") or body_id)
        predictions = _plain(predicted)
        latency_ms = (time.perf_counter() - started) * 1000
        self.metrics.answered(model, predictions, checked.missing)
        if self.log is not None:
            rows = checked.rows
            ids = [request_id] if rows == 1 else [f"{request_id}/{i}" for i in range(rows)]
            self.log.add(PredictionRows(ids, arrived, model, checked, predicted, proba, latency_ms))
        return Answered(model, request_id, predictions, proba)


def _request_id(given: str | None) -> str:
    return given if given and REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _headers(answered: Answered) -> dict[str, str]:
    return {"X-Model-Name": answered.model.name, "X-Model-Version": answered.model.version,
            "X-Request-Id": answered.request_id}


def _error(exc: InputError, style: str) -> JSONResponse:
    body = exc.body()
    if style == "v2":
        body = {"error": body.pop("message"), **body}
    else:
        body = {"error_code": MLFLOW_CODES.get(exc.status, "BAD_REQUEST"), **body}
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(body, status_code=exc.status, headers=headers)


def create_app(config: ServeConfig, model: LoadedModel | None = None) -> Starlette:
    server = Server(config, model)
    metrics = server.metrics

    def route(path: str, methods: list[str], style: str = "mlflow"
              ) -> Callable[[Callable[[Request], Awaitable[Response]]], Route]:
        def wrap(handler: Callable[[Request], Awaitable[Response]]) -> Route:
            async def endpoint(request: Request) -> Response:
                in_flight = metrics.in_flight.labels(endpoint=path)
                in_flight.inc()
                started = time.perf_counter()
                try:
                    response = await handler(request)
                except InputError as exc:
                    response = _error(exc, style)
                except Exception as exc:
                    log.exception("%s failed", path)
                    response = _error(InputError(f"the server failed: {type(exc).__name__}", status=500), style)
                finally:
                    in_flight.dec()
                metrics.requests.labels(endpoint=path, status=str(response.status_code)).inc()
                metrics.latency.labels(endpoint=path).observe(time.perf_counter() - started)
                return response

            return Route(path, endpoint, methods=methods)
        return wrap

    def parse_mlflow(request: Request) -> Callable[[bytes, LoadedModel], tuple[Any, str | None]]:
        content_type = request.headers.get("content-type")
        if mlflow_protocol.media_type(content_type) not in (*mlflow_protocol.JSON_TYPES, *mlflow_protocol.CSV_TYPES):
            raise InputError("unsupported content type", status=415, expected="application/json or text/csv",
                             found=mlflow_protocol.media_type(content_type) or "no Content-Type header")
        return lambda body, model: (mlflow_protocol.parse(body, content_type), None)

    @route("/invocations", ["POST"])
    async def invocations(request: Request) -> Response:
        server.authorize(request)
        answered = await server.answer(request, parse_mlflow(request))
        probabilities = None
        if answered.probabilities is not None:
            classes = [str(c) for c in answered.model.classes]
            probabilities = [dict(zip(classes, row)) for row in answered.probabilities.tolist()]
        return JSONResponse(mlflow_protocol.response(answered.predictions, probabilities),
                            headers=_headers(answered))

    def v2_model(request: Request) -> LoadedModel:
        """The model in service, if it is the one the path names (and the version, on a versioned
        route: only the version in service is answered, as MLServer answers only the versions it
        has loaded); else a 404."""
        model = server.model()
        name, version = request.path_params["name"], request.path_params.get("version")
        if name != model.name:
            raise InputError(f"no model named {name!r} is served here", status=404, expected=model.name,
                             found=name)
        if version is not None and version != model.version:
            raise InputError(f"version {version} of model {name!r} is not served here (version {model.version} is)",
                             status=404, expected=model.version, found=version)
        return model

    async def infer(request: Request) -> Response:
        server.authorize(request)
        model = v2_model(request)

        def parse(body: bytes, model: LoadedModel) -> tuple[Any, str | None]:
            # The V2 protocol's bodies are JSON whatever the Content-Type says (curl -d sends a form type).
            return v2_protocol.parse_infer(mlflow_protocol.load_json(body), model)

        # A versioned route is answered by the version it named, even if a swap comes meanwhile.
        answered = await server.answer(request, parse, model if "version" in request.path_params else None)
        probabilities = None if answered.probabilities is None else answered.probabilities.tolist()
        body = v2_protocol.infer_response(answered.model, answered.request_id, answered.predictions, probabilities)
        return JSONResponse(body, headers=_headers(answered))

    async def v2_metadata(request: Request) -> Response:
        return JSONResponse(v2_protocol.metadata(v2_model(request)))

    async def v2_model_ready(request: Request) -> Response:
        model = v2_model(request)
        return JSONResponse({"name": model.name, "version": model.version, "ready": True})

    v2_routes = [route(f"/v2/models/{{name}}{versioned}{path}", [method], "v2")(handler)
                 for versioned in ("", "/versions/{version}")
                 for path, method, handler in (("/infer", "POST", infer), ("", "GET", v2_metadata),
                                               ("/ready", "GET", v2_model_ready))]

    @route("/v2/health/live", ["GET"], "v2")
    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    @route("/v2/health/ready", ["GET"], "v2")
    async def ready(request: Request) -> Response:
        is_ready = server.holder.current is not None
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n", status_code=200 if server.holder.current is not None else 503)

    ping_route = route("/ping", ["GET"])(ping)
    health_route = route("/health", ["GET"])(ping)

    @route("/version", ["GET"])
    async def version(request: Request) -> Response:
        from importlib.metadata import version as installed

        model = server.model()
        return JSONResponse({"model_name": model.name, "model_version": model.version,
                             "alias": config.alias, "mlopsc": installed("mlopsc"), "mlflow": installed("mlflow")},
                            headers={"X-Model-Name": model.name, "X-Model-Version": model.version})

    @route("/metrics", ["GET"])
    async def metrics_endpoint(request: Request) -> Response:
        content, media = metrics.exposition()
        return Response(content, media_type=media)

    @route("/feedback", ["POST"])
    async def feedback(request: Request) -> Response:
        server.authorize(request)
        document = mlflow_protocol.load_json(await server.body(request))
        rows = feedback_rows(document)
        if server.log is None:
            raise InputError("the prediction log is off (--no-log), so feedback is not kept", status=409)
        server.log.add(rows)
        return JSONResponse({"accepted": rows.rows})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await server.start()
        model = server.holder.current
        log.info("serving %s version %s%s", model.name, model.version,
                 f" (following @{config.alias})" if config.alias and config.poll_interval > 0 else "")
        try:
            yield
        finally:
            await server.stop()
            log.info("stopped; the prediction log is flushed" if server.log else "stopped")

    routes = [invocations, ping_route, health_route, version, *v2_routes, live, ready, metrics_endpoint, feedback]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.server = server
    return app


def feedback_rows(document: Any) -> FeedbackRows:
    """`{"request_id": ID, "label": L}`; for a request of several rows, `label` may be a list with one
    label per row (rows `ID/0`, `ID/1`, ...)."""
    if not isinstance(document, dict) or "request_id" not in document or "label" not in document:
        raise InputError("feedback needs a request_id and a label", expected='{"request_id": "...", "label": ...}',
                         found=describe(document) if not isinstance(document, dict)
                         else f"keys: {', '.join(sorted(document)) or 'none'}")
    request_id, label = document["request_id"], document["label"]
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        raise InputError("request_id must be the id a prediction answered with", column="request_id",
                         expected="the X-Request-Id of an answer", found=describe(request_id))
    labels = label if isinstance(label, list) else [label]
    for value in labels:
        if isinstance(value, (dict, list)) or value is None:
            raise InputError("a label must be one value", column="label", expected="text, a number or a boolean",
                             found=describe(value))
    ids = [request_id] if not isinstance(label, list) else [f"{request_id}/{i}" for i in range(len(labels))]
    return FeedbackRows(ids, labels, datetime.now(UTC))


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("mlflow", "alembic", "alembic.runtime.migration"):   # store migrations log at INFO
        logging.getLogger(name).setLevel(logging.WARNING)


def app_from_environment() -> Starlette:
    """The app of one uvicorn worker process (`--workers N`), configured by `$MLOPSC_SERVE_CONFIG`.
    Worker processes are spawned, not forked: they set up their own logging."""
    configure_logging()
    return create_app(ServeConfig.from_json(os.environ[CONFIG_ENV]))
