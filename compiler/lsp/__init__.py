"""`mlopsc lsp`: the language server, a thin adapter over the compiler (see README.md).

Importing this package imports nothing; `server.py` imports pygls, the rest the compiler only.
"""
