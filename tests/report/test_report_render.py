"""The HTML report as a person reads it, rendered from run records with real artifacts (no
pipeline run: tests/report_runs.py writes what the steps would): every section of a run whose
gate failed and of a monitor run, names and values holding HTML or JavaScript rendered as text,
figures reused when nothing changed, and the step graph without Graphviz."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest
from mlopsc.runtime.report import NeedsDrawing, write_report
from mlopsc.runtime.report.figures import FigureCache
from mlopsc.runtime.report.graph import STATUS_COLOURS, Node, columns, graph_svg
from mlopsc.runtime.report.render import render
from report_page import ReportPage, assert_inert, assert_outline
from report_runs import CLASS, COLUMN, VALUE, synthetic_runs


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """(folder, pipeline record, monitor record, their pages), drawn once for the module."""
    folder = tmp_path_factory.mktemp("report")
    pipeline, monitor = synthetic_runs(folder / "artifacts")
    pages = {}
    for record in (pipeline, monitor):
        path = write_report(record, folder / record["run_id"] / "report.html", folder / "figures")
        pages[record["run_id"]] = ReportPage.read(path)
    return folder, pipeline, monitor, pages


def test_a_failing_gate_report_has_each_section_of_a_pipeline_run(rendered):
    page = rendered[3]["hostile-gate"]
    assert list(page.sections) == ["run", "checks", "evaluation", "explanation", "fairness", "gate"]
    assert "failed" in page.title
    steps = {row[0]: row[2] for row in page.rows("run", "steps")}
    assert steps == {"src": "cached", "quality": "ok", "model": "cached", "scores": "ok", "release": "failed",
                     "service": "skipped"}
    assert page.sections["run"].figures == ["graph"]
    assert page.rows("run", "params") == [["note", VALUE]]

    checks = page.rows("checks", "expectations")
    assert [row[1] for row in checks] == ["passed", "failed"] and checks[1][2:4] == ["61", VALUE]

    evaluation = page.sections["evaluation"]
    assert evaluation.figures == ["confusion", "roc", "precision_recall"]      # a binary target
    assert page.rows("evaluation", "metrics") == [["accuracy", "0.5200", "0.6100", "-0.0900"],
                                                  ["f1", "0.5000", "0.5700", "-0.0700"]]
    assert page.sections["evaluation"].tables["metrics"][0][2] == "champion (version 3)"

    assert page.sections["explanation"].figures == ["importance"]      # beside the champion's
    assert page.rows("explanation", "importance") == [[COLUMN, "0.0800", "0.0100", "0.0500"],
                                                      ["group", "0.0100", "0.0050", "0.0020"]]

    fairness = page.sections["fairness"]
    assert fairness.headings == ["demographic_parity(group) <= 0.1 failed"] and fairness.figures == ["fairness"]
    assert page.rows("fairness", "groups") == [[VALUE, "0.600", "0.400"], ["b", "0.390", "0.610"]]
    assert page.rows("fairness", "groups")[0] and page.sections["fairness"].tables["groups"][0][1] == CLASS

    gate = page.sections["gate"]
    assert gate.headings == ["release failed"] and "Nothing was deployed" in gate.text
    assert_outline(page, "failing_gate")
    assert [(row[0], row[3]) for row in page.rows("gate", "rules")] == [
        ("accuracy >= 0.9", "failed"), ("f1 >= champion.f1 - 0.01", "failed"),
        ("demographic_parity(group) <= 0.1", "failed")]


def test_a_forced_gate_says_who_forced_it_and_when(rendered, tmp_path):
    folder, pipeline, _, _ = rendered
    decision = json.loads(Path(pipeline["steps"]["release"]["result"]["outputs"]["decision"]["uri"]).read_text())
    decision.update(passed=True, forced=True, forced_by="ana", forced_at="2026-12-01T10:00:00+00:00")
    forced = tmp_path / "decision.json"
    forced.write_text(json.dumps(decision))
    record = json.loads(json.dumps(pipeline))
    record["steps"]["release"].update(status="ok", error=None)
    record["steps"]["release"]["result"]["outputs"]["decision"]["uri"] = str(forced)
    page = ReportPage(render(record, FigureCache(folder / "figures")))
    assert page.sections["gate"].headings == ["release forced"]
    assert "ana deployed anyway at 2026-12-01T10:00:00+00:00" in " ".join(page.sections["gate"].text.split())


def test_a_monitor_report_shows_each_column_reference_against_current(rendered):
    page = rendered[3]["hostile-monitor"]
    assert list(page.sections) == ["run", "monitor"]
    monitor = page.sections["monitor"]
    assert monitor.headings[0] == "watch 1 rule(s) fired"
    # The current data is a served model's log: latency over time, predictions, then each column.
    assert monitor.figures == ["latency", "prediction", "column", "column"]
    assert [(row[0], row[3], row[4]) for row in page.rows("monitor", "rules")] == [
        (f"psi({COLUMN}) > 0.2", "fired", "alert"), ("latency p95 > 50ms", "ok", "alert")]
    assert_outline(page, "synthetic_monitor")


def test_names_and_values_holding_html_or_javascript_render_as_text(rendered):
    folder, *_ = rendered
    for run in ("hostile-gate", "hostile-monitor"):
        html = (folder / run / "report.html").read_text(encoding="utf-8")
        page = ReportPage(html)
        assert_inert(page)
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>yes" not in html
        assert "&lt;script&gt;alert(&#34;column&#34;)&lt;/script&gt;" in html
        assert COLUMN in "".join(s.text for s in page.sections.values())     # shown, as text


def test_an_unchanged_run_draws_nothing_again(rendered):
    folder, pipeline, monitor, _ = rendered
    cache = FigureCache(folder / "figures")
    for record in (pipeline, monitor):
        render(record, cache, draw=False)          # every figure comes from the first drawing
    assert cache.drawn == []
    with pytest.raises(NeedsDrawing):
        render(pipeline, FigureCache(folder / "empty"), draw=False)


def test_a_figure_redrawn_when_what_it_shows_changed(rendered, tmp_path):
    folder, pipeline, _, _ = rendered
    shutil.copytree(folder / "figures", tmp_path / "figures")
    record = json.loads(json.dumps(pipeline))
    record["steps"]["scores"]["result"]["outputs"]["predictions"]["sha256"] = "changed"
    cache = FigureCache(tmp_path / "figures")
    render(record, cache)
    assert sorted(cache.drawn) == ["confusion", "precision_recall", "roc"]


def test_the_step_graph_without_graphviz_is_laid_out_by_dependency():
    nodes = [Node("a", "source", "ok", 1.0), Node("b", "check", "cached", 0.0), Node("c", "train", "failed", 2.0),
             Node("d", "deploy", "skipped", None)]
    edges = [("a", "b", False), ("a", "c", False), ("b", "c", True), ("c", "d", False)]
    assert columns(nodes, edges) == {"a": 0, "b": 1, "c": 2, "d": 3}
    svg = ElementTree.fromstring(graph_svg(nodes, edges, use_dot=False))
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert texts == ["a", "source · ok · 1.0 s", "b", "check · cached", "c", "train · failed", "d", "deploy · skipped"]
    borders = [r.get("stroke") for r in svg.iter("{http://www.w3.org/2000/svg}rect")]
    assert borders == [STATUS_COLOURS[s][1] for s in ("ok", "cached", "failed", "skipped")]
    assert len([p for p in svg.iter("{http://www.w3.org/2000/svg}path") if p.get("marker-end")]) == 4


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (.ci/run installs it)")
def test_the_step_graph_with_graphviz_names_every_step_and_escapes_them():
    nodes = [Node('x"y', "source", "ok", 1.0), Node("<b>", "check", "failed", 0.5)]
    svg = graph_svg(nodes, [('x"y', "<b>", False)])
    tree = ElementTree.fromstring(svg)
    texts = " ".join(t.text or "" for t in tree.iter("{http://www.w3.org/2000/svg}text"))
    assert 'x"y' in texts and "<b>" in texts and "<b>" not in svg


def test_a_figure_whose_data_is_gone_is_a_note_not_a_lost_report(rendered, tmp_path):
    _, pipeline, _, _ = rendered
    record = json.loads(json.dumps(pipeline))
    record["steps"]["scores"]["result"]["outputs"]["predictions"].update(uri=str(tmp_path / "gone.parquet"),
                                                                         sha256="gone")
    page = ReportPage(render(record, FigureCache(tmp_path / "figures")))
    assert page.sections["evaluation"].figures == [] and "confusion matrix: not drawn" in page.sections["evaluation"].text
    assert "the figure 'confusion matrix' could not be drawn: FileNotFoundError" in page.sections["run"].text
    assert page.sections["explanation"].figures == ["importance"]          # the rest is all there


def test_a_monitored_column_is_drawn_from_the_histogram_its_step_recorded(rendered, tmp_path, monkeypatch):
    # Reading a column of a multi-million-row reference back was most of a large monitor's report.
    from mlopsc.runtime.report import monitor_figures

    _, _, monitor, _ = rendered
    record = json.loads(json.dumps(monitor))
    report = record["steps"]["watch"]["result"]["outputs"]["report"]
    document = json.loads(Path(report["uri"]).read_text(encoding="utf-8"))
    document["features"][COLUMN]["histogram"] = {"edges": [0.0, 1.0, 2.0, 4.0], "reference": [6, 2, 0],
                                                 "current": [1, 1, 6]}
    report.update(uri=str(tmp_path / "monitor.json"), sha256="with a histogram")
    (tmp_path / "monitor.json").write_text(json.dumps(document), encoding="utf-8")
    read = monitor_figures.read_columns

    def read_columns(uri, columns):
        assert COLUMN not in columns, "the column's data was read again"
        return read(uri, columns)

    monkeypatch.setattr(monitor_figures, "read_columns", read_columns)
    cache = FigureCache(tmp_path / "figures")
    page = ReportPage(render(record, cache))
    assert page.sections["monitor"].figures == ["latency", "prediction", "column", "column"]
    assert "could not be drawn" not in page.sections["run"].text and cache.drawn.count("column") == 2
