"""Served sources and the monitor rules they enable, on a log written by the server's own writer
(runtime/serving/prediction_log.py) with a real trained model: the window, the feedback join,
`metric` rules (and "not evaluated" with too few labels), `latency` percentiles per request."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from mlopsc.compiler import ir
from mlopsc.runtime import artifacts, execute
from mlopsc.runtime.core import StepError
from release_fixtures import FEATURES, fit_model, penguins


@pytest.fixture
def served_log(ctx, tmp_path):
    """A log folder with 40 fresh rows (20 requests of 2 rows, latencies 1..20 ms, the first 30 rows
    with feedback labels, 10 of them wrong) and 10 rows logged 3 days ago; the model's folder."""
    from mlopsc.runtime.serving.model import from_folder
    from mlopsc.runtime.serving.prediction_log import FeedbackRows, PredictionLog, PredictionRows

    data = penguins().dropna().reset_index(drop=True)
    folder = fit_model(ctx, data, str(tmp_path / "m"))["outputs"]["model"]["uri"]
    model = from_folder(folder, "penguins-species", "1")
    log = PredictionLog(str(tmp_path / "log"), flush_interval=0.05)
    log.start()
    now = datetime.now(UTC)
    old = data.iloc[:10]
    predictions, proba = model.predict(old[model.feature_names])
    log.add(PredictionRows([f"old{i}" for i in range(10)], now - timedelta(days=3), model,
                           old[model.feature_names], predictions, proba, 5.0))
    fresh = data.iloc[10:50].reset_index(drop=True)
    predictions, proba = model.predict(fresh[model.feature_names])
    for r in range(20):
        rows = slice(2 * r, 2 * r + 2)
        log.add(PredictionRows([f"req{r}/0", f"req{r}/1"], now, model, fresh[model.feature_names].iloc[rows],
                               predictions[rows], proba[rows], float(r + 1)))
    labels = [str(p) if i >= 10 else "Wrong" for i, p in enumerate(predictions[:30])]
    log.add(FeedbackRows([f"req{i // 2}/{i % 2}" for i in range(30)], labels, now))
    log.close()
    return str(tmp_path / "log"), folder, data


def source(log: str, window: float | None = 86400.0) -> ir.Source:
    return ir.Source(name="live", format="served", served="species_service", registry="penguins-species",
                     window=window, log=log)


def test_a_served_source_reads_the_window_and_joins_the_labels(ctx, out, served_log):
    log, _, _ = served_log
    step = source(log)
    result = execute(step, {}, out(step), ctx)
    frame = artifacts.read_parquet(out(step)["data"])
    assert result["rows"] == 40 and len(frame) == 40          # the 3-day-old rows are outside the window
    assert {*FEATURES, "request_id", "timestamp", "model_version", "prediction", "latency_ms", "label"} \
        <= set(frame.columns)
    assert frame["label"].notna().sum() == 30 and (frame["label"] == "Wrong").sum() == 10
    step = source(log, window=None)
    execute(step, {}, out(step), ctx)
    assert len(artifacts.read_parquet(out(step)["data"])) == 50


def test_an_empty_window_says_where_it_looked(ctx, out, tmp_path):
    step = source(str(tmp_path / "nothing"))
    with pytest.raises(StepError, match=r"no predictions logged in the last 1d under .*nothing"):
        execute(step, {}, out(step), ctx)


def test_the_default_log_folder_is_the_servers(ctx):
    from mlopsc.runtime.served import log_uri
    from mlopsc.runtime.state_folder import serving_log_folder

    step = source(None)
    spec_dir = artifacts.os.path.dirname(artifacts.os.path.abspath(ctx.spec_path))
    assert log_uri(step, ctx) == str(serving_log_folder(spec_dir, "penguins-species"))


def test_metric_and_latency_rules_judge_the_served_rows(ctx, out, served_log, tmp_path):
    log, _, data = served_log
    live = source(log)
    execute(live, {}, out(live), ctx)
    reference = str(tmp_path / "reference.parquet")
    artifacts.write_parquet(data, reference)
    rules = (ir.MetricRule(metric="accuracy", op="<", threshold=0.85, action="retrain"),
             ir.MetricRule(metric="f1_macro", op="<", threshold=0.1, action="alert"),
             ir.LatencyRule(percentile="p50", op=">", threshold_ms=10, action="alert"),
             ir.LatencyRule(percentile="p99", op=">", threshold_ms=50, action="alert"))
    step = ir.Monitor(name="served", reference=ir.Ref(step="penguins"), current=ir.Ref(step="live"), rules=rules)
    result = execute(step, {"reference": reference, "current": out(live)["data"]}, out(step), ctx)
    report = artifacts.read_json(out(step)["report"])
    accuracy, f1, p50, p99 = report["rules"]
    assert accuracy["observed"] == pytest.approx(20 / 30) and accuracy["fired"] and accuracy["rows"] == 30
    assert not f1["fired"] and f1["evaluated"]
    assert p50["observed"] == pytest.approx(10.5) and p50["rows"] == 20 and p50["fired"]   # 20 requests, 1..20 ms
    assert p99["observed"] < 20 and not p99["fired"]
    assert result["retrain"] is True and result["reasons"] == [accuracy["reason"]]
    assert result["alerts"] == [p50["reason"]] and "over 20 requests" in p50["reason"]

    few = step.model_copy(update={"min_labels": 31})
    result = execute(few, {"reference": reference, "current": out(live)["data"]}, out(few), ctx)
    report = artifacts.read_json(out(few)["report"])
    assert report["rules"][0]["evaluated"] is False and not report["rules"][0]["fired"]
    assert report["rules"][0]["reason"] == ("metric accuracy not evaluated: 30 of 40 rows have feedback labels, "
                                            "fewer than min_labels = 31")
    assert result["retrain"] is False and result["notes"] == [r["reason"] for r in report["rules"][:2]]
