"""The Prefect 3 backend: `generator.py` compiles a spec into flows.py + prefect.yaml,
`runner.py` is what those flows call on a worker, `submit.py` deploys a build to a server.
See README.md in this folder and docs/backends/prefect.md."""
