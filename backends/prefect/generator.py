"""Compile a Program into a Prefect 3 module (`flows.py`) and its deployments (`prefect.yaml`).

The mapping (docs/backends/prefect.md has the whole of it):
- the pipeline's steps -> one flow, named after the pipeline; each step -> one `@task` that hands
  the step's config (its IR as a dict literal, `base.step_literal`) and artifact URIs to
  `mlopsc.runtime.execute`;
- each monitor block -> its own flow (the steps it reads + the monitor), named `<pipeline>-<monitor>`;
- spec params -> typed flow parameters with their defaults, plus `storage` (where artifacts go)
  and `force_gate` (pass a failing gate, recorded as forced);
- retries / retry_delay / timeout -> task options; edges of the graph -> `wait_for`;
- schedules -> cron schedules of the deployments in prefect.yaml, for one named work pool.

What Prefect cannot express is reported through `unsupported(node, why)` with the spec line:
warnings for what is dropped but harmless to the results, errors for what would change them.
"""
from __future__ import annotations

import json
import keyword
import os
import re
from dataclasses import dataclass, field
from typing import Any

from mlopsc.compiler import ir

from ..base import Generator, references, step_literal

# Flow parameters the generated flows add beside the spec's params.
RESERVED_PARAMS = frozenset({"storage", "force_gate"})
# Work pool types whose job templates can carry cpu / memory / gpu (see docs/backends/prefect.md).
RESOURCE_POOLS = frozenset({"kubernetes"})
DEFAULT_WORK_POOL = "mlopsc"
PY_TYPES = {"int": "int", "float": "float", "str": "str", "bool": "bool"}


@dataclass
class TaskModel:
    """One step as the templates need it."""

    name: str
    kind: str
    function: str            # the @task function's name: `<kind>_<step>`
    config: str              # the step's config as a Python dict literal (`base.step_literal`)
    where: str               # "penguins.mlops:27"
    retries: int
    retry_delay: float
    timeout: float | None
    upstream: list[str] = field(default_factory=list)
    inputs: dict[str, tuple[str, str]] = field(default_factory=dict)   # field -> (step, port)


@dataclass
class FlowModel:
    name: str                # Prefect flow name
    function: str            # Python function name (the deployment's entrypoint)
    deployment: str
    description: str
    steps: list[TaskModel]
    schedule: str | None
    retrain: str | None = None   # "flow/deployment" a retrain action starts
    monitor: str | None = None


def docstring(text: str) -> str:
    """A docstring holding `text`: triple-quoted when that is safe, else repr (still a docstring)."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"""{text}"""'
    return repr(text)


class PrefectGenerator(Generator):
    target = "prefect"
    templates_package = "mlopsc.backends.prefect"

    # ------------------------------------------------------------------ entry point
    def generate(self) -> dict[str, str]:
        pipeline = self.program.pipeline
        self.work_pool = self.options.get("work_pool") or DEFAULT_WORK_POOL
        self.pool_type = self.options.get("work_pool_type") or "process"
        self._check_names(pipeline)

        pipeline_steps = self._steps(self.program.graph.pipeline_steps())
        training = FlowModel(
            name=pipeline.name, function=f"{pipeline.name}_pipeline", deployment=pipeline.name,
            description=pipeline.description or f"mlopsc pipeline {pipeline.name}",
            steps=self._tasks(pipeline_steps), schedule=pipeline.schedule)
        flows = [training]
        for monitor in (s for s in pipeline.steps if isinstance(s, ir.Monitor)):
            steps = self._steps(self.program.graph.monitor_steps(monitor.name))   # the monitor last
            retrain = any(rule.action == "retrain" for rule in monitor.drift)
            flows.append(FlowModel(
                name=f"{pipeline.name}-{monitor.name}", function=f"{monitor.name}_monitor",
                deployment=pipeline.name, description=f"monitor {monitor.name} of pipeline {pipeline.name}",
                steps=self._tasks(steps), schedule=monitor.schedule, monitor=monitor.name,
                retrain=f"{training.name}/{training.deployment}" if retrain else None))

        tasks: dict[str, TaskModel] = {}
        for flow in flows:
            for task in flow.steps:
                tasks.setdefault(task.name, task)
        self._check_functions(pipeline, [t.function for t in tasks.values()] + [f.function for f in flows])
        for step in pipeline.steps:
            self._check_step(step)
        job_variables = self._job_variables(pipeline)

        env = self.environment()
        env.filters["yaml"] = lambda value: json.dumps(value)   # JSON is YAML: quoted and escaped
        env.filters["doc"] = docstring
        context = {
            # Absolute: flow runs start in the build folder, maybe on another machine
            # (where MLOPSC_SPEC_FILE overrides it).
            "pipeline": pipeline, "spec_file": os.path.abspath(pipeline.source_file), "flows": flows,
            "tasks": [tasks[s.name] for s in pipeline.steps if s.name in tasks],
            "params": [self._param(p) for p in pipeline.params],
            "work_pool": self.work_pool, "pool_type": self.pool_type, "job_variables": job_variables,
            "secrets": self._secret_references(pipeline), "prefect_version": _prefect_version(),
        }
        return {
            "flows.py": env.get_template("flows.py.j2").render(context),
            "prefect.yaml": env.get_template("prefect.yaml.j2").render(context),
        }

    # ------------------------------------------------------------------ models for the templates
    def _steps(self, names: list[str]) -> list[ir.Step]:
        return [self.program.pipeline.step(n) for n in names]

    def _tasks(self, steps: list[ir.Step]) -> list[TaskModel]:
        members = {s.name for s in steps}
        return [self._task(s, members) for s in steps]

    def _task(self, step: ir.Step, members: set[str]) -> TaskModel:
        """`members`: the steps of the flow the task runs in. A reference to a step outside it (a
        monitor's model, when the monitor scores the deployed model instead) is no input there."""
        upstream, inputs = [], {}
        for fieldname, ref in step.refs():
            if ref.step not in members:
                continue
            if ref.step not in upstream:
                upstream.append(ref.step)
            if fieldname != "after":
                inputs[fieldname] = (ref.step, ref.port)   # filled by the passes (docs/architecture.md)
        return TaskModel(
            name=step.name, kind=step.kind, function=f"{step.kind}_{step.name}",
            config=step_literal(step, indent=4, used=6 + len(repr(step.name))), where=str(step.span) if step.span else step.name,
            retries=step.retries, retry_delay=step.retry_delay, timeout=step.timeout, upstream=upstream,
            inputs=inputs)

    def _param(self, param: ir.Param) -> dict[str, Any]:
        annotation = PY_TYPES[param.type]
        if param.default is None:
            return {"name": param.name, "signature": f"{param.name}: {annotation}", "required": True}
        default = float(param.default) if param.type == "float" else param.default
        return {"name": param.name, "signature": f"{param.name}: {annotation} = {default!r}", "required": False}

    # ------------------------------------------------------------------ what Prefect cannot express
    def _check_names(self, pipeline: ir.Pipeline) -> None:
        for param in pipeline.params:
            if param.default is None:
                self.unsupported(param, f"param {param.name!r} without a default: it becomes a required flow "
                                 "parameter, and scheduled runs of the deployment have no value for it",
                                 hint="give it a default, or set it in prefect.yaml's `parameters`")
            if param.name in RESERVED_PARAMS or keyword.iskeyword(param.name):
                self.unsupported(param, f"param {param.name!r} clashes with a flow parameter or Python keyword",
                                 error=True, hint="rename the param")

    def _check_functions(self, pipeline: ir.Pipeline, functions: list[str]) -> None:
        """Two Python functions of flows.py with one name, e.g. step `b_pipeline` of kind train and
        pipeline `train_b` both give `train_b_pipeline`."""
        clashes = sorted({f for f in functions if functions.count(f) > 1})
        if clashes:
            self.unsupported(pipeline, f"two flows or tasks would both be named {', '.join(clashes)} in flows.py",
                             error=True, hint="rename the pipeline or the step")

    def _check_step(self, step: ir.Step) -> None:
        if step.cache and "cache" in step.spans:
            # Artifacts of a Prefect run live under its flow run id; nothing is reused across runs.
            self.unsupported(step, "step caching across runs (every flow run recomputes its steps)", field="cache")
        if step.resources is not None and self.pool_type not in RESOURCE_POOLS:
            self.unsupported(step, f"resources on a {self.pool_type!r} work pool: its workers run flow runs as local "
                             "processes that cannot reserve cpu, memory or gpus; the step runs without them",
                             hint="a kubernetes work pool can carry them: see docs/backends/prefect.md", field="resources")
        if step.timeout is not None:
            self.unsupported(step, "a timeout that interrupts the step: Prefect runs sync tasks in worker threads and "
                             "marks the task failed only once the step returns", hint="the flow run's own "
                             "timeout (or the work pool's) can stop a step that hangs", field="timeout")
        if isinstance(step, ir.Deploy) and step.serving is not None:
            self.unsupported(step, "serving replicas: the deploy step registers the model and moves the alias; "
                             "Prefect does not run a model server", hint="serve it beside the deployment: mlopsc serve SPEC --tracking-uri URI", field="serving")

    def _job_variables(self, pipeline: ir.Pipeline) -> dict[str, Any]:
        """Kubernetes pools: the flow run's pod gets the largest request of its steps, because
        every task of a Prefect flow run runs in that one pod."""
        if self.pool_type not in RESOURCE_POOLS:
            return {}
        with_resources = [s for s in pipeline.steps if s.resources is not None]
        if not with_resources:
            return {}
        cpu = max((s.resources.cpu for s in with_resources if s.resources.cpu), default=None)
        memory = max((s.resources.memory for s in with_resources if s.resources.memory),
                     key=_memory_bytes, default=None)
        gpu = max((s.resources.gpu for s in with_resources if s.resources.gpu), default=None)
        for step in with_resources:
            self.unsupported(step, "per-step resources: every task of a flow run shares its pod, which requests "
                             "the largest cpu / memory / gpu of the pipeline's steps", field="resources")
        for step in with_resources:
            if step.resources.gpu_type:
                self.unsupported(step, f"gpu_type {step.resources.gpu_type!r}: the pool's job "
                                 "template chooses the node (add a nodeSelector there)", field="resources")
        found = {"cpu": f"{cpu:g}" if cpu else None, "memory": memory, "gpu": gpu}
        return {k: v for k, v in found.items() if v is not None}

    def _secret_references(self, pipeline: ir.Pipeline) -> list[str]:
        """Every env() / secret() the steps read, as the spec wrote it (for the module docstring).
        Names go through json.dumps: a name holding quotes or backslashes cannot end or break it."""
        from mlopsc.runtime.params import env_name

        seen: dict[str, str] = {}
        for ref in references(pipeline.steps):
            if isinstance(ref, ir.SecretRef):
                key = f", {json.dumps(ref.key)}" if ref.key else ""
                seen[f"secret({json.dumps(ref.name)}{key})"] = env_name(ref)
            else:
                seen[f"env({json.dumps(ref.name)})"] = env_name(ref)
        return [f"{ref} -> ${json.dumps(var)[1:-1]}" for ref, var in sorted(seen.items())]


def _prefect_version() -> str:
    """The installed Prefect's version, from its metadata (importing prefect costs ~1 s)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prefect")
    except PackageNotFoundError:
        return "3"


_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _memory_bytes(quantity: str) -> float:
    match = re.fullmatch(r"([0-9.]+)\s*([KMGT]i?)?", quantity.strip())
    if not match:
        return 0
    return float(match.group(1)) * _UNITS[match.group(2) or ""]
