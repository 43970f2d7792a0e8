"""`mlopsc build FILE --target local`: a standalone `pipeline.py` that runs the spec with only
`mlopsc[runtime]` installed.

The module embeds the validated IR as readable dict literals (`base.step_literal`: made by repr,
never spec text pasted into code), the step lists the compiler's graph computed, and calls the
same runner as `mlopsc run`. Output is deterministic: sorted keys, no timestamps, so the same
spec gives the same bytes (golden tests rely on it).
"""
from __future__ import annotations

from mlopsc.compiler import __version__ as compiler_version
from mlopsc.compiler import ir

from ..base import Generator, format_literal, node_config, step_literal


class LocalGenerator(Generator):
    target = "local"
    templates_package = "mlopsc.backends.local"

    def generate(self) -> dict[str, str]:
        program = self.program
        pipeline = program.pipeline
        self._report_unsupported(pipeline)
        graph = program.graph
        monitors = {s.name: graph.monitor_steps(s.name) for s in pipeline.steps if isinstance(s, ir.Monitor)}
        header = {k: v for k, v in node_config(pipeline).items() if k != "steps"}
        text = self.environment().get_template("pipeline.py.j2").render(
            pipeline=pipeline,
            spec_file=pipeline.source_file.replace("\\", "/").rsplit("/", 1)[-1],
            version=compiler_version,
            ir_header=format_literal(header, used=len("IR = ")),
            ir_steps=[step_literal(step, indent=4) for step in pipeline.steps],
            pipeline_steps=graph.pipeline_steps(),
            monitors=monitors,
            deps={s.name: sorted({r.step for _, r in s.refs()}) for s in pipeline.steps},
        )
        return {"pipeline.py": text}

    def _report_unsupported(self, pipeline: ir.Pipeline) -> None:
        hint = "run `python pipeline.py` from cron or a scheduler of your choice"
        if pipeline.schedule:
            self.unsupported(pipeline, f"schedule {pipeline.schedule!r} (the local runner does not "
                             "schedule runs)", hint=hint)
        for step in pipeline.steps:
            res = step.resources
            if res is not None and (res.gpu or res.gpu_type):
                self.unsupported(step, "gpu resources (steps run on this machine's CPU)")
            if res is not None and (res.memory or res.cpu):
                self.unsupported(step, "cpu/memory requests (the local runner does not reserve "
                                 "or limit them)", hint="use --jobs to bound parallel steps")
            if isinstance(step, ir.Deploy) and step.serving is not None:
                self.unsupported(step, "serving settings (local deploy registers the model; "
                                 "it starts no server)",
                                 hint=f"serve it with: mlflow models serve -m models:/{step.registry}@{step.alias}")
            if isinstance(step, ir.Monitor) and step.schedule:
                self.unsupported(step, f"monitor schedule {step.schedule!r} (run `python pipeline.py "
                                 f"--only {step.name}` on that schedule)", hint=hint)
