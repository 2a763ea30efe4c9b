"""`python -m infra <command>`: bench and compare live in infra.bench.cli (they need the
load generator's dependencies); every other command lives in infra.cli.

Whatever a command meets, the user gets a message, never a traceback: a refused input
names what was wrong (exit 2); anything else is a bug, reported as one with the place to
find its details (exit 70).
"""

import sys
import tempfile
import traceback
from pathlib import Path

from infra.inputs.errors import ConfigError, InputError, ModelSourceError

LOAD_COMMANDS = ("bench", "compare")


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in LOAD_COMMANDS:
        from infra.bench.cli import main as load_main  # noqa: PLC0415 - only for these

        return load_main(argv)
    from infra.cli import main as cli_main  # noqa: PLC0415

    return cli_main(argv)


def main() -> int:
    try:
        return _dispatch(sys.argv[1:])
    except (ConfigError, InputError, ModelSourceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        with tempfile.NamedTemporaryFile(
            "w", prefix="tfserving-gke-error-", suffix=".txt", delete=False
        ) as report:
            traceback.print_exc(file=report)
        print(
            f"error: an unexpected failure ({type(error).__name__}: {error}). This is a bug in "
            f"tfserving-gke, not in what you asked: please report it with the details in "
            f"{Path(report.name)}",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
