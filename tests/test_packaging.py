"""The install promises of pyproject.toml: one import namespace, a runtime that works on a worker
with no compiler or orchestrator libraries, and a console script that never shows a traceback."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Makes `import X` fail as if X were not installed, for the packages a runtime-only worker lacks.
BLOCK_COMPILER_LIBS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'lark', 'jinja2', 'kfp', 'prefect', 'networkx'}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
"""


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_three_folders_import_as_one_namespace():
    result = run_python("import mlopsc.compiler, mlopsc.runtime, mlopsc.backends; print('ok')")
    assert result.returncode == 0, result.stderr


def test_wheel_installs_only_under_the_mlopsc_namespace(tmp_path):
    import shutil
    import zipfile

    # Build from a copy: setuptools writes build/ and *.egg-info into the source tree.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("compiler", "backends", "runtime"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(src)],
                   check=True, timeout=300, capture_output=True)
    (wheel,) = tmp_path.glob("mlopsc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("mlopsc-")}
    assert tops == {"mlopsc"}
    assert "mlopsc/compiler/ir.py" in names and "mlopsc/runtime/core.py" in names
    # Data files a non-editable install (a worker image) needs: the grammar and every template.
    for data in ["compiler/grammar.lark", "compiler/sklearn_estimators.json",
                 *(p.relative_to(ROOT).as_posix() for p in ROOT.glob("backends/*/templates/*.j2"))]:
        assert f"mlopsc/{data}" in names, data


def test_runtime_imports_without_compiler_or_orchestrator_libraries():
    code = BLOCK_COMPILER_LIBS + "import mlopsc.runtime, mlopsc.runtime.core; print(mlopsc.runtime.__version__)"
    result = run_python(code)
    assert result.returncode == 0, result.stderr


def test_blocking_really_blocks():
    result = run_python(BLOCK_COMPILER_LIBS + "import lark")
    assert result.returncode != 0 and "No module named 'lark'" in result.stderr


def test_version_and_unknown_command_exit_codes():
    exe = Path(sys.executable).with_name("mlopsc")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "0.1.0" in version.stdout
    unknown = subprocess.run([exe, "frobnicate"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2
    assert "Traceback" not in unknown.stderr and "frobnicate" in unknown.stderr
