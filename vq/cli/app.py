"""The `vq` entry point: composes the command groups and maps errors to exit codes.

Every error a user can cause is a `VqError`: it prints as one line (``error: ...``) and
exits with the error's code. A full disk or a read-only one is the machine's state, not a
bug: one line too (exit 1; what was written before stays whole, as every write is atomic).
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from vq import __version__, cli
from vq.cli import (
    backends,
    bench,
    embed,
    enhance,
    eval,
    export,
    index,
    ladder,
    media,
    models,
    report,
    run,
    score,
    serve,
    train,
)
from vq.errors import VqError
from vq.fsutil import DISK_ERRORS


def build_app() -> typer.Typer:
    """The whole command tree. `train` and `eval` are generated from the task and
    evaluator registries, so they are built per invocation (a plugin or a test may have
    registered more)."""
    app = typer.Typer(
        name="vq",
        help="vq: copy detection, quality scoring and enhancement for video platforms.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(root)
    app.add_typer(models.app, name="models")
    app.add_typer(export.app, name="export")
    app.add_typer(bench.app, name="bench")
    app.add_typer(train.build_app(), name="train")
    app.add_typer(eval.build_app(), name="eval")
    app.add_typer(index.app, name="index")
    app.command("run")(run.run_cmd)
    app.command("backends")(backends.backends_cmd)
    app.command("enhance")(enhance.enhance_cmd)
    app.command("embed")(embed.embed_cmd)
    app.command("score")(score.score_cmd)
    app.command("report")(report.report_cmd)
    app.command("serve")(serve.serve_cmd)
    app.command("ladder")(ladder.ladder_cmd)
    app.command("probe")(media.probe_cmd)
    app.command("frames")(media.frames_cmd)
    return app


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vq {__version__}")
        raise typer.Exit()


def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Log what the libraries do."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the process exit code."""
    cli.invocation[:] = sys.argv[1:] if argv is None else list(argv)
    try:
        # Built here, inside the handler: a broken plugin entry point is a one-line error.
        command = typer.main.get_command(build_app())
        # Non-standalone click returns the code of a `typer.Exit` raised in a command.
        result = command.main(args=argv, prog_name="vq", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except VqError as e:
        sys.stderr.write(f"error: {e}\n")
        code = e.exit_code
    except OSError as e:
        if e.errno not in DISK_ERRORS:
            raise
        where = f" (writing {e.filename})" if e.filename else ""
        sys.stderr.write(f"error: {e.strerror}{where}\n")
        code = 1
    except typer.Exit as e:
        code = e.exit_code
    except typer.Abort:
        sys.stderr.write("interrupted\n")
        code = 130
    except typer.TyperException as e:  # usage errors: bad option, unknown command
        e.show()
        code = e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = 130
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
