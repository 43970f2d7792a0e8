"""The Kubeflow Pipelines v2 backend: `mlopsc build --target kubeflow` and `mlopsc submit`.

- `generator.py` (build time, imports kfp lazily): the kfp module, its compiled YAML, the image's
  Dockerfile, the KServe and recurring-run manifests, one pipeline per monitor block.
- `task.py` (run time, inside the component's container): what a generated component calls. It
  imports no kfp and no jinja2, only `mlopsc.runtime`, so the image needs `mlopsc[runtime]` + kfp's
  executor alone.
- `submit.py`: upload, run and schedule a built folder on a KFP API server.

Nothing in this package is imported by `mlopsc check` or by another backend.
"""
