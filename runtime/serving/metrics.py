"""The server's Prometheus metrics, on a registry of its own (`GET /metrics`).

    mlopsc_requests_total{endpoint, status}            counter: answered requests
    mlopsc_request_duration_seconds{endpoint}          histogram: arrival to answer
    mlopsc_requests_in_flight{endpoint}                gauge
    mlopsc_batch_size                                  histogram: rows per predict call
    mlopsc_batch_requests                              histogram: requests per predict call
    mlopsc_predictions_total{class}                    counter (classifiers)
    mlopsc_prediction_value                            histogram (regressors)
    mlopsc_missing_values_total{feature}               counter: missing input values
    mlopsc_model_info{name, version, alias}            info: the version in service
    mlopsc_model_reloads_total{result}                 counter: success | failure
    mlopsc_prediction_log_rows_written_total{stream}   counter: predictions | feedback
    mlopsc_prediction_log_rows_failed_total{stream, reason}   counter: queue_full | write_error | ...

`endpoint` is the route's template (`/v2/models/{name}/infer`), never the raw path, so a client
cannot create label values at will.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import LoadedModel

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("mlopsc_requests", "Answered requests", ["endpoint", "status"], registry=registry)
        self.latency = Histogram("mlopsc_request_duration_seconds", "Time from a request's arrival to its answer",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=registry)
        self.in_flight = Gauge("mlopsc_requests_in_flight", "Requests being answered", ["endpoint"],
                               registry=registry)
        self.batch_rows = Histogram("mlopsc_batch_size", "Rows per predict call", buckets=BATCH_BUCKETS,
                                    registry=registry)
        self.batch_requests = Histogram("mlopsc_batch_requests", "Requests answered by one predict call",
                                        buckets=BATCH_BUCKETS, registry=registry)
        self.predictions = Counter("mlopsc_predictions", "Predicted rows by class (classifiers)", ["class"],
                                   registry=registry)
        self.prediction_value = Histogram("mlopsc_prediction_value", "Predicted values (regressors)",
                                          buckets=(-1e6, -1e3, -100, -10, -1, 0, 1, 10, 100, 1e3, 1e6),
                                          registry=registry)
        self.missing = Counter("mlopsc_missing_values", "Missing input values by feature", ["feature"],
                               registry=registry)
        self.model = Info("mlopsc_model", "The model version in service", registry=registry)
        self.reloads = Counter("mlopsc_model_reloads", "Loads of a new model version", ["result"], registry=registry)
        self.log_written = Counter("mlopsc_prediction_log_rows_written", "Rows written to the prediction log",
                                   ["stream"], registry=registry)
        self.log_failed = Counter("mlopsc_prediction_log_rows_failed",
                                  "Rows that could not be written to the prediction log", ["stream", "reason"],
                                  registry=registry)
        for result in ("success", "failure"):
            self.reloads.labels(result=result)

    def serving(self, model: LoadedModel, alias: str | None) -> None:
        self.model.info({"name": model.name, "version": model.version, "alias": alias or ""})

    def answered(self, model: LoadedModel, predictions: Any, missing: dict[str, int]) -> None:
        for feature, count in missing.items():
            if count:
                self.missing.labels(feature=feature).inc(count)
        if model.task == "classification":
            counts: dict[str, int] = {}
            for p in predictions:
                counts[str(p)] = counts.get(str(p), 0) + 1
            for cls, count in counts.items():
                self.predictions.labels(**{"class": cls}).inc(count)
        else:
            for p in predictions:
                self.prediction_value.observe(float(p))

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
