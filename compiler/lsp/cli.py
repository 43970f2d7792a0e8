"""`mlopsc lsp`: imports pygls only when it runs (`mlopsc --help` lists it without paying for it)."""
from __future__ import annotations

import click


@click.command()
@click.option("--stdio", is_flag=True, help="Talk over stdin and stdout (the only transport; editors pass it).")
def lsp(stdio: bool) -> None:
    """Run the language server for .mlops files on stdin/stdout (for editors)."""
    try:
        from .server import build_server
    except ImportError as exc:
        raise click.UsageError(f"'mlopsc lsp' is not available in this install ({exc.name} is missing). "
                               "Install it with: pip install 'mlopsc[lsp]'") from None
    build_server().start_io()
