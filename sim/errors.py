"""One way for every command to report errors and end: messages on one line, fixed exit codes.

==========  =====================================================================
exit code   meaning
==========  =====================================================================
0           done
1           some runs of a sweep failed (the others' results are kept), or its launcher failed
2           a user's mistake (config, option, input file): one line naming what is wrong
3           a numerical failure of the model (names the path block and the step)
4           outputs could not be written (read-only, not a folder, disk full); nothing partial
130         interrupted (Ctrl-C or SIGTERM); nothing partial
==========  =====================================================================
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Callable, NoReturn, Sequence

EXIT_OK = 0
EXIT_FAILED_RUNS = 1
EXIT_USER = 2
EXIT_NUMERICAL = 3
EXIT_OUTPUT = 4
EXIT_INTERRUPTED = 130


#: The name the running command goes by (``carrysim compare`` when dispatched by carrysim).
PROG: str | None = None


def prog(default: str) -> str:
    """The program name for a subcommand's help and errors."""
    return PROG or default


class UserError(ValueError):
    """A mistake in what the user asked for; its message is the one line shown."""


def _user_error_types() -> tuple[type, ...]:
    from sim.validate import ConfigError

    types: list[type] = [UserError, ConfigError]
    for module, name in (("sim.compare", "CompareError"), ("sim.reverse_stress", "NoCrossing")):
        mod = sys.modules.get(module)  # only errors of modules in use can have been raised
        if mod is not None and hasattr(mod, name):
            types.append(getattr(mod, name))
    return tuple(types)


def classify(err: BaseException) -> tuple[int, str] | None:
    """(exit code, one-line message) for an error a user should see as such, else None."""
    from sim.io import describe_os_error

    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted: nothing partial was left behind"
    if isinstance(err, _user_error_types()):
        return EXIT_USER, one_line(err)
    if _is_config_error(err):
        from sim.compose import _one_line

        return EXIT_USER, _one_line(err)
    cli = sys.modules.get("sim.cli")
    if cli is not None and isinstance(err, getattr(cli, "LaunchError", ())):
        return EXIT_FAILED_RUNS, one_line(err)
    engine = sys.modules.get("sim.engine")
    if engine is not None and isinstance(err, getattr(engine, "SimulationError", ())):
        return EXIT_NUMERICAL, one_line(err)
    if isinstance(err, OSError):
        return EXIT_OUTPUT, describe_os_error(err)
    return None


def _is_config_error(err: BaseException) -> bool:
    """Hydra's and OmegaConf's errors: an override or config that cannot be composed."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(err, (HydraException, OmegaConfBaseException))


def one_line(err: BaseException | str) -> str:
    return " ".join(str(err).split())


def fail(message: str, code: int = EXIT_USER) -> NoReturn:
    print(f"error: {one_line(message)}", file=sys.stderr)
    sys.exit(code)


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run_command(main: Callable[[list[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)`` and turn the errors a user should see into one line and an exit code.

    Any other exception is a bug and keeps its traceback.  SIGTERM is treated like Ctrl-C.
    """
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(main(None if argv is None else list(argv)) or 0)
    except SystemExit as exit_:
        if isinstance(exit_.code, str):  # SystemExit("message") from older code paths
            print(exit_.code if exit_.code.startswith("error:") else f"error: {exit_.code}",
                  file=sys.stderr)
            return EXIT_USER
        return int(exit_.code or 0)
    except BrokenPipeError:  # the reader went away (``carrysim --help | head``): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except BaseException as err:
        known = classify(err)
        if known is None:
            raise
        code, message = known
        prefix = "" if code == EXIT_INTERRUPTED else "error: "
        print(f"{prefix}{message}", file=sys.stderr)
        return code
