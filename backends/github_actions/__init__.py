"""The GitHub Actions target: `mlopsc build SPEC --target github-actions` writes a CI/CD workflow
that checks, diffs and runs the spec (or submits it to Prefect or Kubeflow). See README.md here
and docs/backends/github-actions.md."""
