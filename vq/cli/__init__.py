"""The `vq` command line: one typer module per command group, composed in `app.py`."""
