"""The local backend: run a spec on this machine (`mlopsc run`), cached and resumable, or build a
standalone module that does the same with only `mlopsc[runtime]` installed. See README.md."""
