"""The Kubeflow Pipelines v2 generator: a Program -> a kfp module, its YAML and manifests.

Files written (`mlopsc build SPEC --target kubeflow -o DIR [--image IMAGE]`):

    pipeline.py / pipeline.yaml              the training pipeline: every step but monitors
    monitor_<name>.py / .yaml                one pipeline per monitor block
    Dockerfile                               the image every component runs in
    kserve.yaml                              an InferenceService per deploy step (if any)
    recurring_run.yaml                       the spec's schedules as KFP recurring runs (if any)

The YAML is compiled by kfp's own compiler from the generated module (imported from a temporary
folder), so what is uploaded is exactly what the module says. What kfp cannot express is reported
through `unsupported` with the spec line; nothing is dropped silently. kfp is imported here only,
inside `generate`.
"""
from __future__ import annotations

import json
import math
from pathlib import PurePosixPath
from typing import Any

from mlopsc.compiler import ir

from ..base import Generator, format_literal, py_literal, references, step_literal
from . import manifests

KFP_TYPE = {"Dataset": "Dataset", "Model": "Model", "Metrics": "Metrics", "Report": "Artifact"}
# Kinds whose result depends on the world (the registry, the clock), not only on their inputs:
# a cached result would be stale. Sources re-read their data every run (kfp#4857).
NEVER_CACHED = frozenset({"source", "gate", "deploy", "monitor"})
# Python names the generated pipeline function uses; a spec param may not shadow them.
RESERVED = frozenset({"dsl", "kubernetes", "pipeline", "closing", "start", "finish", "retrain", "IMAGE",
                      "Artifact", "Dataset", "HTML", "Input", "Markdown", "Metrics", "Model", "Output"})
SPEC_DIR_IN_IMAGE = "/opt/mlopsc/spec"
TRAINING_PACKAGE_IN_IMAGE = "/opt/mlopsc/pipeline.yaml"


def default_image() -> str:
    return f"mlopsc-runtime:{_version()}"


def cpu_quantity(cores: float) -> str:
    """Cores as a Kubernetes quantity: 2 -> "2", 0.5 -> "500m"."""
    return str(int(cores)) if float(cores).is_integer() else f"{round(cores * 1000)}m"


def kfp_cron(cron: str) -> str:
    """KFP's cron has a leading seconds field: "0 6 * * 1" -> "0 0 6 * * 1"."""
    return f"0 {cron}"


def dns_name(name: str) -> str:
    """A step or pipeline name as a Kubernetes resource name (DNS-1123 label)."""
    text = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return text[:63] or "mlopsc"


class KubeflowGenerator(Generator):
    target = "kubeflow"
    templates_package = "mlopsc.backends.kubeflow"

    @property
    def pipeline(self) -> ir.Pipeline:
        return self.program.pipeline

    @property
    def image(self) -> str:
        return self.options.get("image") or default_image()

    @property
    def spec_file(self) -> str:
        return PurePosixPath(self.pipeline.source_file.replace("\\", "/")).name

    # ------------------------------------------------------------ entry point

    def generate(self) -> dict[str, str]:
        self._check_param_names()
        files: dict[str, str] = {}
        graph = self.program.graph
        files["pipeline.py"] = self._module(graph.pipeline_steps())
        monitors = [s for s in self.pipeline.steps if isinstance(s, ir.Monitor)]
        for monitor in monitors:
            files[f"monitor_{monitor.name}.py"] = self._module(graph.monitor_steps(monitor.name), monitor)
        for name in [n for n in files if n.endswith(".py")]:
            files[name[:-3] + ".yaml"] = compile_module(files[name])
        files["Dockerfile"] = self._dockerfile()
        deploys = [s for s in self.pipeline.steps if isinstance(s, ir.Deploy)]
        if deploys:
            files["kserve.yaml"] = manifests.inference_services(self, deploys)
        schedules = manifests.recurring_runs(self, monitors)
        if schedules is not None:
            files["recurring_run.yaml"] = schedules
        return files

    # ------------------------------------------------------------ the kfp module

    def _module(self, names: list[str], monitor: ir.Monitor | None = None) -> str:
        steps = [self._step_model(self.pipeline.step(n), set(names)) for n in names]
        kfp_name = dns_name(self.pipeline.name)
        context = {
            "version": _version(), "spec_file": self.spec_file, "spec_hash": self.pipeline.spec_hash,
            "image": self.image, "kfp_name": kfp_name, "spec_dir": SPEC_DIR_IN_IMAGE,
            "pipeline_name": kfp_name if monitor is None else f"{kfp_name}-monitor-{dns_name(monitor.name)}",
            "description": self.pipeline.description or f"mlopsc pipeline {self.pipeline.name}",
            "pipeline_info": {"name": self.pipeline.name, "spec_file": self.spec_file,
                              "spec_hash": self.pipeline.spec_hash},
            "params": [self._param_model(p) for p in self.pipeline.params],
            "steps": steps, "monitor": monitor.name if monitor else None, "dsl_names": _dsl_names(steps),
            "uses_kubernetes": any(line.startswith("kubernetes.") for st in steps for line in st["settings"]),
            "monitor_var": f"{monitor.name}_task" if monitor else None,
            "training_package": TRAINING_PACKAGE_IN_IMAGE,
            "layout": self._layout_literal(names),
        }
        return self.environment().get_template("pipeline.py.j2").render(**context)

    def _layout_literal(self, names: list[str]) -> str:
        """What the run's HTML report draws beside the step results: each step's kind, spec line
        and references, each deploy's registry (`mlopsc.runtime.report.layout_of`)."""
        from mlopsc.runtime.report import layout_of

        return format_literal(layout_of(self.pipeline.step(n) for n in names), indent=4, used=len("    layout = "))

    def _param_model(self, param: ir.Param) -> dict[str, Any]:
        return {"name": param.name, "type": param.type, "has_default": param.default is not None,
                "default": param.default}

    def _step_model(self, step: ir.Step, present: set[str]) -> dict[str, Any]:
        inputs = []
        for field, ref in step.inputs().items():
            if ref.step not in present:
                continue    # a monitor of a deployed model scores the registered one, not a retrained one
            producer = self.pipeline.step(ref.step)
            inputs.append({"field": field, "type": KFP_TYPE[producer.OUTPUTS[ref.port]],
                           "source": f'{ref.step}_task.outputs["{ref.port}"]'})
        outputs = [{"port": port, "type": KFP_TYPE[ptype]} for port, ptype in step.OUTPUTS.items()]
        if isinstance(step, ir.Score) and step.output and "://" not in step.output:
            self.unsupported(step, f"output {step.output!r} would be written inside the pod and lost with it; "
                                   "the predictions are the task's `predictions` artifact",
                             hint="write to a URL (s3://, gs://) to keep a copy outside KFP")
        names = [i["field"] for i in inputs] + [o["port"] for o in outputs] + ["context", "summary", "step", "task"]
        if len(names) != len(set(names)):   # IR field and port names are fixed: a bug, not the user's
            raise RuntimeError(f"kfp argument names clash in a {step.kind} step: {sorted(names)}")
        return {
            "name": step.name, "kind": step.kind, "func": f"{step.kind}_{step.name}",
            "var": f"{step.name}_task", "where": self._where(step),
            "config": self._config_literal(step), "inputs": inputs, "outputs": outputs,
            "summary": "Report" in step.OUTPUTS.values(), "settings": self._task_settings(step),
        }

    def _where(self, node: Any) -> str:
        span = getattr(node, "span", None)
        return f"{self.spec_file}:{span.line}:{span.col}" if span else self.spec_file

    def _config_literal(self, step: ir.Step) -> str:
        """The step's config as `base.step_literal` writes it (`    step = ` precedes it), with the
        spec's file name only in its positions, so a runtime error in a pod still names the spec
        line and the build does not depend on where the spec lies."""
        return step_literal(step, indent=4, used=11, spec_file=self.spec_file)

    def _task_settings(self, step: ir.Step) -> list[str]:
        """The calls that map the step's run policy onto its kfp task, one statement each."""
        var, lines = f"{step.name}_task", []
        lines.append(f"{var}.set_display_name({py_literal(step.name)})")
        res = step.resources
        if res is not None:
            if res.cpu is not None:
                cpu = py_literal(cpu_quantity(res.cpu))
                lines += [f"{var}.set_cpu_request({cpu})", f"{var}.set_cpu_limit({cpu})"]
            if res.memory is not None:
                mem = py_literal(res.memory)
                lines += [f"{var}.set_memory_request({mem})", f"{var}.set_memory_limit({mem})"]
            if res.gpu:
                gpu_type = res.gpu_type or "nvidia.com/gpu"
                lines += [f"{var}.set_accelerator_type({py_literal(gpu_type)})",
                          f"{var}.set_accelerator_limit({py_literal(str(res.gpu))})"]
            elif res.gpu_type:
                self.unsupported(step, "gpu_type without a gpu count; no accelerator is requested",
                                 hint="add `gpu = 1` to the resources block")
        if step.retries:
            backoff = f", backoff_duration={py_literal(f'{math.ceil(step.retry_delay)}s')}, backoff_factor=1.0" \
                if step.retry_delay else ""
            lines.append(f"{var}.set_retry({step.retries}{backoff})")
            if step.retry_delay and not float(step.retry_delay).is_integer():
                self.unsupported(step, f"retry_delay {step.retry_delay}s: KFP counts whole seconds, "
                                       f"rounded up to {math.ceil(step.retry_delay)}s")
        if step.timeout is not None:
            seconds = math.ceil(step.timeout)
            lines.append(f"kubernetes.set_timeout({var}, seconds={seconds})")
            if not float(step.timeout).is_integer():
                self.unsupported(step, f"timeout {step.timeout}s: a pod deadline counts whole seconds, "
                                       f"rounded up to {seconds}s")
        cached = step.cache and step.kind not in NEVER_CACHED and not _reads_registry(step)
        lines.append(f"{var}.set_caching_options({cached})")
        lines += [f"{var}.after({ref.step}_task)" for ref in step.after]
        lines += self._secret_settings(step, var)
        return lines

    def _secret_settings(self, step: ir.Step, var: str) -> list[str]:
        """env() and secret() references as Kubernetes secret references: names only, never values.

        secret("db-url")          -> secret db-url, key "value", as env DB_URL
        secret("db", "password")  -> secret db, key "password", as env DB_PASSWORD
        env("WINE_DB_URL")        -> secret <pipeline>-env, key WINE_DB_URL, as env WINE_DB_URL
        The env variable is the one the runtime reads (`mlopsc.runtime.params.env_name`)."""
        from mlopsc.runtime.params import env_name

        by_secret: dict[str, dict[str, str]] = {}
        for ref in references(step):
            if isinstance(ref, ir.SecretRef):
                name, key = ref.name, ref.key or "value"
            else:
                name, key = f"{dns_name(self.pipeline.name)}-env", ref.name
            by_secret.setdefault(name, {})[key] = env_name(ref)
        return [f"kubernetes.use_secret_as_env({var}, secret_name={py_literal(name)}, "
                f"secret_key_to_env={py_literal(dict(sorted(keys.items())))})"
                for name, keys in sorted(by_secret.items())]

    def _check_param_names(self) -> None:
        for param in self.pipeline.params:
            if param.name in RESERVED or param.name.startswith("mlopsc_") or param.name.endswith("_task"):
                self.unsupported(param, f"param name {param.name!r} is used by the generated kfp module",
                                 error=True, hint="rename the param")

    # ------------------------------------------------------------ the image

    def _dockerfile(self) -> str:
        files = [self.spec_file]
        for step in self.pipeline.steps:
            if isinstance(step, ir.Source) and step.path:
                if _is_relative_file(step.path):
                    files.append(step.path)
                elif "://" not in step.path:
                    self.unsupported(step, f"source path {step.path!r} is outside the spec's folder, so the "
                                           "image cannot contain it", hint="use a URL (s3://, gs://) or a "
                                           "path under the spec's folder")
        copies = [[f, f"{SPEC_DIR_IN_IMAGE}/{f}"] for f in sorted(set(files))]
        return self.environment().get_template("Dockerfile.j2").render(
            image=self.image, version=_version(), kfp_version=_kfp_version(), spec_file=self.spec_file,
            spec_hash=self.pipeline.spec_hash, copies=[json.dumps(c) for c in copies],
            spec_dir=SPEC_DIR_IN_IMAGE, training_package=TRAINING_PACKAGE_IN_IMAGE)


def compile_module(text: str) -> str:
    """Compile a generated module's `pipeline` with kfp's own compiler; return the YAML text."""
    import importlib.util
    import sys
    import tempfile
    import uuid
    from pathlib import Path

    try:
        from kfp import compiler
    except ImportError:
        import click

        raise click.UsageError("`mlopsc build --target kubeflow` needs kfp: pip install 'mlopsc[kubeflow]'") from None

    with tempfile.TemporaryDirectory(prefix="mlopsc-kfp-") as tmp:
        module_path, package = Path(tmp) / "pipeline.py", Path(tmp) / "pipeline.yaml"
        module_path.write_text(text, encoding="utf-8")
        name = f"_mlopsc_kfp_{uuid.uuid4().hex}"
        spec = importlib.util.spec_from_file_location(name, module_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
            compiler.Compiler().compile(module.pipeline, str(package))
        finally:
            sys.modules.pop(name, None)
        return package.read_text(encoding="utf-8")


def _dsl_names(steps: list[dict[str, Any]]) -> list[str]:
    """The kfp.dsl names the module's components use (no unused import in generated code)."""
    names = {"Output", "HTML"} | {"Markdown" for s in steps if s["summary"]}
    for s in steps:
        names |= {io["type"] for io in s["inputs"] + s["outputs"]} | ({"Input"} if s["inputs"] else set())
    return sorted(names)


def _reads_registry(step: ir.Step) -> bool:
    """A score of a registered model reads whatever holds the alias now."""
    return isinstance(step, ir.Score) and step.registry is not None


def _is_relative_file(path: str) -> bool:
    p = PurePosixPath(path)
    return "://" not in path and not p.is_absolute() and ".." not in p.parts


def _version() -> str:
    from mlopsc.runtime import __version__

    return __version__


def _kfp_version() -> str:
    from importlib.metadata import version

    return version("kfp")
