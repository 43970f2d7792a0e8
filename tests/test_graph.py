"""PipelineGraph: edges from references (never textual order), deterministic order, the main run
and each monitor's run, and the drawings."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from ir_builders import penguins, penguins_steps, ref, replace, span
from mlopsc.compiler import ir
from mlopsc.compiler.program import compile_pipeline
from mlopsc.compiler.render_graph import render_image, to_dot, to_mermaid


def graph(steps=None):
    return compile_pipeline(penguins(steps)).graph


def test_edges_point_from_producer_to_consumer_with_ports():
    edges = {(a, b): ports for a, b, ports in graph().edges()}
    assert edges[("penguins_split", "species_model")] == [("data", "train")]
    assert edges[("penguins_quality", "penguins_split")] == [("after", "report")]
    assert ("species_model", "penguins_split") not in edges


def test_order_follows_references_not_text():
    order = graph(list(reversed(penguins_steps()))).order()
    assert order.index("penguins_split") < order.index("species_model") < order.index("species_eval")


def test_ties_are_broken_by_spec_order():
    steps = penguins_steps()
    assert graph(steps).order()[:2] == ["penguins", "penguins_2009"]
    steps[0], steps[1] = steps[1], steps[0]
    assert graph(steps).order()[:2] == ["penguins_2009", "penguins"]


def test_order_of_a_subset():
    assert graph().order(["species_eval", "penguins", "species_model"]) == \
        ["penguins", "species_model", "species_eval"]


def test_upstream_and_downstream_are_transitive():
    g = graph()
    assert g.upstream("species_model") == ["penguins", "penguins_quality", "penguins_split"]
    assert g.downstream("species_eval") == ["release", "species_service"]


def test_the_main_run_leaves_out_monitors_and_what_only_they_read():
    assert graph().pipeline_steps() == ["penguins", "penguins_quality", "penguins_split", "species_model",
                                        "species_eval", "release", "species_service"]


def test_a_monitor_of_a_deployed_model_does_not_retrain():
    assert graph().monitor_steps("species_drift") == \
        ["penguins", "penguins_2009", "penguins_quality", "penguins_split", "species_drift"]


def test_a_monitor_of_an_undeployed_model_needs_its_training():
    steps = [s for s in penguins_steps() if s.name != "species_service"]
    assert "species_model" in graph(steps).monitor_steps("species_drift")


def test_monitor_steps_rejects_other_kinds():
    with pytest.raises(TypeError):
        graph().monitor_steps("species_model")


def test_long_chains_are_fine():
    chain = [ir.Source(name="s0", format="csv", path="a.csv", span=span(1))] + [ir.Source(name=f"s{i}", format="csv", path="a.csv", after=(ref(f"s{i - 1}"),),
                                    span=span(i + 1)) for i in range(1, 1500)]
    g = compile_pipeline(penguins(list(reversed(chain)), schedule=None)).graph
    assert g.order()[:3] == ["s0", "s1", "s2"] and len(g.pipeline_steps()) == 1500


def test_mermaid_labels_nodes_by_kind_and_edges_by_port():
    text = to_mermaid(graph())
    assert text.startswith("flowchart LR\n")
    assert '  release{"gate release"}' in text
    assert "  penguins_split -->|train| species_model" in text
    assert "  penguins_quality -.->|after| penguins_split" in text


def test_mermaid_escapes_reserved_ids():
    steps = replace(penguins_steps(), "penguins_2009", name="end")
    steps = replace(steps, "species_drift", current=ref("end"))
    assert "  end_ -->|data| species_drift" in to_mermaid(graph(steps))


def test_dot_is_valid_graphviz():
    text = to_dot(graph())
    assert '"penguins_split" -> "species_model" [label="train"];' in text
    if shutil.which("dot"):
        done = subprocess.run(["dot", "-Tcanon"], input=text, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_images_through_graphviz(tmp_path, fmt, magic):
    out = tmp_path / f"g.{fmt}"
    render_image(to_dot(graph()), fmt, str(out))
    assert out.read_bytes().startswith(magic)


def test_networkx_is_imported_only_when_the_graph_is_used():
    code = ("import sys; sys.path.insert(0, 'tests'); from ir_builders import penguins; "
            "from mlopsc.compiler.program import compile_pipeline; p = compile_pipeline(penguins()); "
            "assert 'networkx' not in sys.modules; p.graph.order(); assert 'networkx' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_penguins_spec_from_text():
    from pathlib import Path

    from mlopsc.compiler import load

    program = load(str(Path(__file__).resolve().parent.parent / "specs" / "penguins.mlops"), {"test_size": "0.2"})
    assert program.params == {"test_size": 0.2, "min_accuracy": 0.9}
    assert program.graph.pipeline_steps()[-1] == "species_service"
    assert "penguins_2009" not in program.graph.pipeline_steps()
    assert program.graph.monitor_steps("species_drift")[-1] == "species_drift"
    assert program.source.startswith("# Classify penguin species")
