"""Turn every expected failure into one line on stderr and a non-zero exit code."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])
err = Console(stderr=True, highlight=False, soft_wrap=True)

USER_ERROR = 2
INTERNAL_ERROR = 1


def _user_error_types() -> tuple[type[BaseException], ...]:
    from kalasag.engine import EngineError
    from kalasag.model import ConfigError

    kinds: list[type[BaseException]] = [ConfigError, EngineError, FileNotFoundError, PermissionError, IsADirectoryError]
    for module, name in (
        ("kalasag.ingest", "InputError"),
        ("kalasag.evaluate", "EvaluationError"),
        ("kalasag.simulate", "SimulationError"),
        ("kalasag.network", "WatchlistError"),
        ("kalasag.network", "NetworkError"),
        ("kalasag.indicators", "IndicatorInputError"),
        ("kalasag.scoring", "FeedbackError"),
    ):
        try:
            mod = __import__(module, fromlist=[name])
            kinds.append(getattr(mod, name))
        except (ImportError, AttributeError):
            pass
    return tuple(kinds)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return " ".join(text.split())


def friendly(func: F) -> F:
    """Decorator for CLI commands: known errors → `error: …` + exit 2; bugs → one line + exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        except _user_error_types() as exc:
            err.print(f"[red]error:[/red] {one_line(exc)}")
            raise typer.Exit(USER_ERROR) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
            if os.environ.get("KALASAG_DEBUG"):
                raise
            from kalasag.engine import resource_error

            lack = resource_error(exc)
            if lack is not None:  # not a bug: the machine's memory or disk (docs/scale.md)
                err.print(f"[red]error:[/red] {lack}")
                raise typer.Exit(USER_ERROR) from None
            err.print(
                f"[red]internal error:[/red] {exc.__class__.__name__}: {one_line(exc)} "
                "(set KALASAG_DEBUG=1 for the traceback, and please report it)"
            )
            raise typer.Exit(INTERNAL_ERROR) from None

    return wrapper  # type: ignore[return-value]


def fail(message: str, code: int = USER_ERROR) -> None:
    err.print(f"[red]error:[/red] {message}")
    sys.stderr.flush()
    raise typer.Exit(code)
