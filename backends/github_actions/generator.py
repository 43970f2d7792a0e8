"""`mlopsc build SPEC --target github-actions -o REPO`: a GitHub Actions workflow for the spec,
written to `REPO/.github/workflows/<pipeline>.yml` (`-o` is the repository's root, so the spec's
path in the workflow is its path from there).

The mapping (docs/backends/github-actions.md has the whole of it):
- a pull request touching the spec, a file a source reads or the workflow: `mlopsc check`,
  `mlopsc fmt --check`, and `mlopsc diff` against the base branch as the job summary;
- a push to the main branch: `mlopsc run`, or with `--deploy-target prefect|kubeflow` a build for
  that target and `mlopsc submit` to it (which then owns the schedules and the monitors);
- the spec's `schedule` and each monitor's: `mlopsc run`, `mlopsc monitor --only NAME`;
- `workflow_dispatch`: the same jobs by hand or through GitHub's API (a retrain from elsewhere);
- each `env()` / `secret()` a job's steps read: `${{ secrets.NAME }}` in that job's env only.

Spec values reach the workflow as YAML double-quoted scalars (JSON escapes) and the shell as
`shlex.quote`d words; text GitHub would evaluate (`${{`) or that would break a line is refused.
"""
from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from mlopsc.compiler import ir
from mlopsc.compiler.cache_config import hashed_file

from ..base import Generator, references
from .cron import github_cron, too_frequent

DEPLOY_TARGETS = ("prefect", "kubeflow")
# What `mlopsc run` needs, and what each deploy target's build and submit need.
EXTRAS = {None: "compiler,runtime", "prefect": "prefect", "kubeflow": "kubeflow"}
# The orchestrators' connection settings, read by `mlopsc submit` from the environment.
TARGET_SECRETS = {"prefect": ("PREFECT_API_URL", "PREFECT_API_KEY"), "kubeflow": ("MLOPSC_KFP_HOST",)}
SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
JOB_HOURS = 6       # GitHub ends a job on its hosted runners after this long
DEFAULT_RUNNER = "ubuntu-latest"
# The spec's path reaches the scripts as this variable (set once, for the whole workflow): no
# quoting of a file name inside a script, and nothing in it that a shell could run.
SPEC = '"$MLOPSC_SPEC"'


def yaml_scalar(text: str) -> str:
    """A YAML scalar that reads back as `text`: plain when nothing in it means anything to YAML
    (it starts with a letter, holds no `: ` or ` #`, is no YAML word such as `yes`), else
    double-quoted with JSON escapes (JSON strings are YAML)."""
    plain = (text[:1].isalpha() or text[:1] == "_") and text.isprintable() and text.isascii() \
        and ": " not in text and " #" not in text and not text.endswith((":", " ")) \
        and text.lower() not in YAML_WORDS
    return text if plain else json.dumps(text)


def expression_string(text: str) -> str:
    """A string literal of GitHub's expression language: single quotes, `'` doubled."""
    return "'" + text.replace("'", "''") + "'"


def glob_escaped(path: str) -> str:
    """A path as a `paths` filter pattern that matches it alone (GitHub's glob characters escaped)."""
    return re.sub(r"([*?+\[\]!\\])", r"\\\1", path)


@dataclass
class Job:
    id: str
    name: str
    condition: str
    install: str                                  # the pip requirement
    commands: list[tuple[str, str]]               # (step name, shell command)
    secrets: dict[str, str] = field(default_factory=dict)      # env var -> secret name
    needs_registry: bool = False


class GitHubActionsGenerator(Generator):
    target = "github-actions"
    templates_package = "mlopsc.backends.github_actions"

    def generate(self) -> dict[str, str]:
        pipeline = self.program.pipeline
        self.deploy_target = self.options.get("deploy_target")
        self.branch = self.options.get("branch") or "main"
        self.runs_on = self.options.get("runs_on") or DEFAULT_RUNNER
        self.spec = self._spec_path()
        self.workflow = f".github/workflows/{pipeline.name}.yml"
        self._check_options()
        self._report_unsupported(pipeline)
        schedules = self._schedules(pipeline)
        jobs = [self._run_job(schedules)] if self.deploy_target is None else [self._deploy_job()]
        jobs += self._monitor_jobs(schedules) if self.deploy_target is None else []
        env = self.environment()
        env.filters["yaml"] = yaml_scalar
        env.filters["sh"] = shlex.quote
        env.filters["quoted"] = json.dumps      # JSON strings are YAML double-quoted scalars
        text = env.get_template("workflow.yml.j2").render(
            pipeline=pipeline, spec=self.spec, branch=self.branch, deploy_target=self.deploy_target,
            paths=[glob_escaped(p) for p in self._watched_paths(pipeline)],
            crons=list(dict.fromkeys(schedules.values())), jobs=jobs,
            tasks=["run"] + [job.id.replace("monitor_", "monitor ", 1) for job in jobs[1:]],
            review_install=self._requirement("compiler"), python="3.11", runs_on=self.runs_on,
        )
        return {self.workflow: text}

    # ------------------------------------------------------------------ paths
    def _spec_path(self) -> str:
        """The spec's path from the repository's root (the output folder), with `/`."""
        root = os.path.abspath(self.options.get("output") or ".")
        relative = os.path.relpath(os.path.abspath(self.program.pipeline.source_file), root)
        if relative.startswith(".."):
            self.unsupported(self.program.pipeline, f"a spec outside the output folder ({relative}): the "
                             "workflow runs in the repository's root", error=True,
                             hint="build with -o set to the root of the repository that holds the spec")
        return self._safe(relative.replace(os.sep, "/"), self.program.pipeline, "the spec's path")

    def _watched_paths(self, pipeline: ir.Pipeline) -> list[str]:
        """The spec, the local files its sources read (from the repository's root) and the workflow."""
        folder = os.path.dirname(self.spec)
        paths = [self.spec]
        for step in pipeline.steps:
            path = hashed_file(step.model_dump(mode="json"))
            if path is None:
                continue
            joined = os.path.normpath(os.path.join(folder, path)).replace(os.sep, "/")
            if joined.startswith("../") or os.path.isabs(path):
                self.unsupported(step, f"a file outside the repository ({path}): a change to it cannot "
                                 "start the workflow", field="path")
                continue
            paths.append(self._safe(joined, step, "the path", field="path"))
        return [self.spec] + sorted(set(paths) - {self.spec}) + [self.workflow]

    def _safe(self, text: str, node: Any, what: str, field: str | None = None) -> str:
        """Refuse text that GitHub would evaluate (`${{ ... }}`) or that would break a line."""
        if "${{" in text or not text.isprintable():
            self.unsupported(node, f"{what} {json.dumps(text)}: a workflow cannot hold it safely (GitHub "
                             "evaluates ${{ ... }} anywhere, and a control character breaks the script)",
                             error=True, hint="rename the file or folder", field=field)
        return text

    # ------------------------------------------------------------------ jobs
    def _requirement(self, extras: str) -> str:
        return f"mlopsc[{extras}]=={_mlopsc_version()}"

    def _schedules(self, pipeline: ir.Pipeline) -> dict[str, str]:
        """Job id -> its cron in GitHub's dialect (only jobs that this workflow schedules)."""
        if self.deploy_target is not None:
            return {}
        found = {}
        for job, node in [("run", pipeline)] + [(f"monitor_{s.name}", s) for s in pipeline.steps
                                                if isinstance(s, ir.Monitor)]:
            if node.schedule:
                cron = github_cron(node.schedule)
                if cron is None:
                    self.unsupported(node, f"schedule {node.schedule!r}: GitHub's cron has no day of week 7 in a "
                                     "range with a step", error=True, hint="write Sunday as 0", field="schedule")
                    continue
                if too_frequent(cron):
                    self.unsupported(node, f"schedule {node.schedule!r}: GitHub runs a workflow at most every "
                                     "5 minutes", field="schedule")
                found[job] = cron
        return found

    def _condition(self, job: str, schedules: dict[str, str], task: str, push: bool) -> str:
        events = ["github.event_name == 'push'"] if push else []
        if job in schedules:
            events.append(f"(github.event_name == 'schedule' && github.event.schedule == "
                          f"{expression_string(schedules[job])})")
        events.append(f"(github.event_name == 'workflow_dispatch' && inputs.task == {expression_string(task)})")
        return " || ".join(events)

    def _run_job(self, schedules: dict[str, str]) -> Job:
        steps = self._steps(self.program.graph.pipeline_steps())
        return Job("run", "mlopsc run", self._condition("run", schedules, "run", push=True),
                   self._requirement(EXTRAS[None]), [(f"mlopsc run {self.spec}", f"mlopsc run {SPEC}")],
                   self._secrets(steps), _registry(steps))

    def _monitor_jobs(self, schedules: dict[str, str]) -> list[Job]:
        jobs = []
        graph = self.program.graph
        for monitor in (s for s in self.program.pipeline.steps if isinstance(s, ir.Monitor)):
            steps = self._steps(graph.monitor_steps(monitor.name))
            if _retrains(monitor):        # `mlopsc monitor` runs the training pipeline when one fires
                steps += self._steps(graph.pipeline_steps())
            job = f"monitor_{monitor.name}"
            command = f"mlopsc monitor {SPEC} --only {monitor.name}"
            jobs.append(Job(job, f"mlopsc monitor {monitor.name}",
                            self._condition(job, schedules, f"monitor {monitor.name}", push=False),
                            self._requirement(EXTRAS[None]), [(f"mlopsc monitor {self.spec} --only {monitor.name}",
                                                               command)],
                            self._secrets(steps), _registry(steps)))
        return jobs

    def _deploy_job(self) -> Job:
        target = self.deploy_target
        build = f"mlopsc build {SPEC} --target {target} -o build/{target}"
        for option in ("image", "work_pool", "work_pool_type"):
            if self.options.get(option):
                build += f" --{option.replace('_', '-')} {shlex.quote(self.options[option])}"
        submit = f"mlopsc submit build/{target} --target {target}" + (" --run" if target == "prefect" else "")
        return Job("deploy", f"mlopsc submit to {target}", self._condition("deploy", {}, "run", push=True),
                   self._requirement(EXTRAS[target]),
                   [(f"mlopsc build --target {target}", build), (f"mlopsc submit --target {target}", submit)],
                   {name: name for name in TARGET_SECRETS[target]})

    def _steps(self, names: list[str]) -> list[ir.Step]:
        return [self.program.pipeline.step(n) for n in names]

    def _secrets(self, steps: list[ir.Step]) -> dict[str, str]:
        """Env var -> secret of the same name, for every env() / secret() these steps read."""
        from mlopsc.runtime.params import env_name

        found = {}
        for ref in references(steps):
            name = env_name(ref)
            if not SECRET_NAME.fullmatch(name) or name.upper().startswith("GITHUB_"):
                self.unsupported(ref, f"{json.dumps(name)} as a GitHub secret: secret names are letters, digits "
                                 "and _, not starting with a digit or GITHUB_", error=True,
                                 hint="rename the variable or secret in the spec")
                continue
            found[name] = name
        return dict(sorted(found.items()))

    # ------------------------------------------------------------------ what Actions cannot express
    def _check_options(self) -> None:
        for option in ("image", "work_pool", "work_pool_type", "branch", "runs_on"):
            value = self.options.get(option)
            if value and ("${{" in value or not value.isprintable()):
                self.unsupported(self.program.pipeline, f"--{option.replace('_', '-')} {json.dumps(value)}: a "
                                 "workflow cannot hold it safely", error=True)

    def _report_unsupported(self, pipeline: ir.Pipeline) -> None:
        if self.deploy_target == "prefect" and self.runs_on == DEFAULT_RUNNER:
            self.unsupported(pipeline, "a Prefect deployment from a GitHub-hosted runner: Prefect workers load "
                             "flows.py from the folder it was deployed from, which the runner deletes when the "
                             "job ends", hint="run the job where the worker can read its folder: --runs-on "
                             "LABEL of a self-hosted runner beside the worker")
        if self.deploy_target == "kubeflow":
            self.unsupported(pipeline, "building and pushing the image the components run in: the workflow "
                             "submits the pipeline only", hint="build and push --image from the same commit "
                             "(docs/backends/kubeflow.md, 'The image')")
        if self.deploy_target is not None:
            return          # the steps run on the target; its own build (in the workflow) reports the rest
        for param in pipeline.params:
            if param.default is None:
                self.unsupported(param, f"param {param.name!r} without a default: pushed and scheduled runs "
                                 "have no value for it", hint="give it a default")
        for step in pipeline.steps:
            if step.cache and "cache" in step.spans:
                self.unsupported(step, "step caching across runs (every workflow run starts with an empty state "
                                 "folder)", field="cache")
            if step.resources is not None:
                self.unsupported(step, "per-step resources: every step runs on the job's runner",
                                 hint="a larger runner (runs-on) gives all steps more", field="resources")
            if step.timeout is not None and step.timeout > JOB_HOURS * 3600:
                self.unsupported(step, f"a timeout over {JOB_HOURS} hours: GitHub ends the job first", field="timeout")
            if isinstance(step, ir.Deploy) and step.serving is not None:
                self.unsupported(step, "serving: the deploy step registers the model and moves the alias; "
                                 "Actions runs no model server", hint="serve it: mlopsc serve SPEC", field="serving")


def _retrains(monitor: ir.Monitor) -> bool:
    return any(rule.action == "retrain" for rule in (*monitor.drift, *monitor.rules))


def _registry(steps: list[ir.Step]) -> bool:
    """Whether these steps read or write the model registry, which must outlive the job."""
    return any(isinstance(s, ir.Deploy) or getattr(s, "registry", None) for s in steps)


def _mlopsc_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlopsc")
    except PackageNotFoundError:
        from mlopsc.compiler import __version__

        return __version__
