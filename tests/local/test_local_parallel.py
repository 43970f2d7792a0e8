"""Independent branches run at the same time, in separate worker processes, bounded by --jobs;
results flow between steps as artifact files only."""
from __future__ import annotations

import shutil

from localrun import REPO, copy_project, ran, run_json


def test_two_branches_overlap_with_jobs_2_and_not_with_jobs_1(tmp_path):
    project = copy_project(tmp_path / "p" / "specs", REPO / "specs" / "penguins.mlops")
    (tmp_path / "p" / "bench").mkdir()
    shutil.copy(REPO / "bench" / "parallel_branches.mlops", tmp_path / "p" / "bench")
    spec, root = "bench/parallel_branches.mlops", project.parent

    two = run_json(spec, "--jobs", "2", cwd=root)
    assert ran(two) == {"penguins", "penguins_split", "forest_a", "forest_b"}
    a, b = two["steps"]["forest_a"], two["steps"]["forest_b"]
    assert a["started_at"] < b["ended_at"] and b["started_at"] < a["ended_at"], "the branches overlap"
    # Each step got its inputs as files: the two models read the very same train split artifact.
    assert a["result"]["data_sha256"] == b["result"]["data_sha256"]

    one = run_json(spec, "--jobs", "1", "--from", "penguins_split", "--no-cache", cwd=root)
    a, b = one["steps"]["forest_a"], one["steps"]["forest_b"]
    assert a["ended_at"] <= b["started_at"] or b["ended_at"] <= a["started_at"], "one at a time"
    assert one["steps"]["penguins"]["status"] == "cached"
