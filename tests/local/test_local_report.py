"""The HTML report of `mlopsc run` for every example and of `mlopsc monitor` for penguins, from the
runs the suite makes anyway (`example_runs`): each section's structure against a golden outline,
a cached re-run that draws nothing again, `mlopsc report`, the copy in MLflow, and every report
opened in headless Chromium with the network off.

UPDATE_GOLDEN=1 rewrites the outlines (tests/golden/report/); UPDATE_SCREENSHOTS=1 rewrites the
screenshots that docs/reports.md shows (docs/img/).
"""
from __future__ import annotations

import base64
import json
import os
import sys
from io import BytesIO
from pathlib import Path

import pytest
from localrun import REPO, SPECS, clean_env, mlopsc
from mlopsc.compiler.spec_files import specs_in
from mlopsc.runtime.state_folder import STATE_FOLDER
from report_page import SVG_PREFIX, ReportPage, assert_inert, assert_outline
from report_runs import HOSTILE, PLAIN, synthetic_runs

EXAMPLES = [p.name for p in specs_in(SPECS)]
CHROMIUM = "/usr/bin/chromium"
# As /work/.library/env/machines/python.md: no request may leave the machine, not even Chromium's own.
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / "docs" / "img"


@pytest.fixture(scope="session")
def penguins_monitor(penguins_runs):
    """`mlopsc monitor` on the penguins run: (project, its record)."""
    project, _, _ = penguins_runs
    done = mlopsc("monitor", "penguins.mlops", "--json", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    return project, json.loads(done.stdout)


@pytest.mark.parametrize("spec", EXAMPLES)
def test_every_example_run_writes_its_report_and_a_rerun_draws_nothing_again(spec, example_runs):
    project, _, first, second = example_runs(spec)
    page = ReportPage.read(first["report"])
    assert_inert(page)
    assert_outline(page, spec.removesuffix(".mlops"))
    assert {row[2] for row in page.rows("run", "steps")} == {"ok"}

    rerun = ReportPage.read(second["report"])
    assert second["report"] != first["report"] and list(rerun.sections) == list(page.sections)
    # Every figure of the re-run but its step graph (the statuses changed) is one the first run
    # drew: the figure files were written before the re-run started.
    folder = project / STATE_FOLDER / "reports" / "figures"
    figures = {path.read_bytes(): path.stat().st_mtime for path in folder.glob("*.svg")}
    shown = [base64.b64decode(src[len(SVG_PREFIX):]) for src in rerun.images()][1:]
    assert shown and all(figures[svg] < second["started"] for svg in shown)


def test_a_fully_cached_run_lays_its_report_out_without_a_worker(penguins_runs):
    project, _, second = penguins_runs
    assert {s["status"] for s in second["steps"].values()} == {"cached"}
    assert Path(second["report"]).is_file()
    assert not (project / STATE_FOLDER / "logs" / second["run_id"] / "zygote.log").exists()


def test_a_monitor_run_shows_each_column_reference_against_current(penguins_monitor):
    _, record = penguins_monitor
    page = ReportPage.read(record["report"])
    assert_inert(page)
    assert_outline(page, "penguins_monitor")


def test_the_report_is_an_artifact_of_the_runs_mlflow_run(penguins_runs, tmp_path):
    import mlflow

    project, first, _ = penguins_runs
    uri = f"sqlite:///{project / STATE_FOLDER / 'mlflow.db'}"
    copy = mlflow.MlflowClient(uri).download_artifacts(first["mlflow_run_id"], "report.html", str(tmp_path))
    assert Path(copy).read_bytes() == Path(first["report"]).read_bytes()


def test_mlopsc_report_renders_a_run_again_and_opens_it(penguins_runs, tmp_path):
    project, first, _ = penguins_runs
    opened = tmp_path / "opened"
    opener = tmp_path / "browser.py"
    opener.write_text(f"import sys; open({str(opened)!r}, 'w').write(sys.argv[1])\n")
    done = mlopsc("report", first["run_id"], "--open", cwd=project,
                  env=clean_env(BROWSER=f"{sys.executable} {opener} %s"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == first["report"] and opened.read_text() == Path(first["report"]).as_uri()
    assert_outline(ReportPage.read(first["report"]), "penguins")

    unknown = mlopsc("report", "20990101-000000-abcdef", cwd=project)
    assert unknown.returncode == 2 and "no run 20990101-000000-abcdef" in unknown.stderr
    assert "Traceback" not in unknown.stderr


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (Debian's chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def not_blank(png: bytes) -> bool:
    from PIL import Image, ImageStat

    image = Image.open(BytesIO(png)).convert("L")
    return ImageStat.Stat(image).stddev[0] > 20 and len(image.getcolors(1 << 16) or []) > 50


def test_every_report_opens_offline_in_chromium_with_no_error(chromium, example_runs, penguins_monitor, tmp_path):
    reports = {spec.removesuffix(".mlops"): example_runs(spec)[2]["report"] for spec in EXAMPLES}
    reports["penguins_monitor"] = penguins_monitor[1]["report"]
    for names in (HOSTILE, PLAIN):          # a failing gate and a monitor, hostile and plain names
        from mlopsc.runtime.report import write_report

        for record in synthetic_runs(tmp_path / names.pipeline, names):
            reports[record["run_id"]] = str(write_report(record, tmp_path / record["run_id"] / "report.html",
                                                         tmp_path / "figures"))
    context = chromium.new_context(offline=True, viewport={"width": 1280, "height": 900})
    for name, path in reports.items():
        page, errors, requests, dialogs = open_page(context, path)
        images = page.eval_on_selector_all("img", "all => all.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert images and all(done and width > 0 and height > 0 for done, width, height in images), name
        assert errors == [] and dialogs == [], (name, errors, dialogs)
        assert all(url.startswith(("file://", "data:")) for url in requests), (name, requests)
        assert not_blank(page.screenshot(full_page=True)), name
        if os.environ.get("UPDATE_SCREENSHOTS"):
            keep_screenshots(page, name)
        page.close()
    context.close()


def open_page(context, path: str):
    """The report in a new tab: (page, console errors and page errors, requested URLs, dialogs)."""
    page = context.new_page()
    errors, requests, dialogs = [], [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(Path(path).as_uri(), wait_until="load")
    return page, errors, requests, dialogs


# Which page's sections docs/reports.md shows, and as which file (the examples' full pages too).
SECTIONS = {"penguins": {"run": "section-run"}, "diabetes": {"evaluation": "section-evaluation-regression"},
            "penguins_monitor": {"monitor": "section-monitor"},
            "species-monitor": {"monitor": "section-monitor-served"},
            "species-gate": {s: f"section-{s}" for s in ("checks", "evaluation", "explanation", "fairness", "gate")}}


def keep_screenshots(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if name in [spec.removesuffix(".mlops") for spec in EXAMPLES] + ["penguins_monitor"]:
        page.screenshot(path=str(SCREENSHOTS / f"report-{name}.png"), full_page=True)
    for section, file in SECTIONS.get(name, {}).items():
        page.locator(f"#{section}").screenshot(path=str(SCREENSHOTS / f"{file}.png"))
