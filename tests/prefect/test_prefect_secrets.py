"""secret() on Prefect: a reference in the generated files, resolved on the worker from a Prefect
Secret block (a JSON block with a key here) when the worker's environment lacks the variable."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prefect_harness import PrefectServer, base_env, flow_run_logs, mlopsc, run_flow

pytestmark = pytest.mark.timeout(600)

SPEC = '''
pipeline secret_db {
  source wines { sql = secret("wine-db", "url")  query = "SELECT alcohol, cultivar FROM wines" }
  check wines_ok on wines { rows >= 150  column cultivar in ["class_0", "class_1", "class_2"] }
}
'''


def test_secret_block_is_resolved_on_the_worker(tmp_path: Path, spec_data: dict[str, str],
                                                 prefect_server: PrefectServer) -> None:
    url = spec_data["WINE_DB_URL"]
    spec = tmp_path / "secret_db.mlops"
    spec.write_text(SPEC)
    build = tmp_path / "build"
    built = mlopsc("build", str(spec), "--target", "prefect", "-o", str(build), env=base_env(tmp_path))
    assert built.returncode == 0, built.stderr
    for path in build.iterdir():
        assert url not in path.read_text() and "wine.db" not in path.read_text(), path

    env = prefect_server.env(MLOPSC_STORAGE=str(tmp_path / "storage"),
                             MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "WINE_DB_URL" not in env
    missing = run_flow(build, "secret_db_pipeline", env)
    assert (missing["type"], missing["state"]) == ("FAILED", "Failed")
    assert 'secret("wine-db", "url") is not set' in missing["message"]

    save = "from prefect.blocks.system import Secret; import sys; Secret(value={'url': sys.argv[1]}).save('wine-db')"
    subprocess.run([sys.executable, "-c", save, url], env=env, check=True, capture_output=True, timeout=120)
    flow = run_flow(build, "secret_db_pipeline", env)
    assert flow["type"] == "COMPLETED", flow["output"][-3000:]
    assert flow["summary"]["steps"]["wines_ok"]["status"] == "ok"
    assert url not in flow_run_logs(prefect_server, flow["flow_run_id"])
