"""`python -m infra <command>`: bench and compare live in infra.bench.cli (they need the
load generator's dependencies); every other command lives in infra.cli."""

import sys

LOAD_COMMANDS = ("bench", "compare")


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] in LOAD_COMMANDS:
        from infra.bench.cli import main as load_main  # noqa: PLC0415 - only for these

        return load_main(argv)
    from infra.cli import main as cli_main  # noqa: PLC0415

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
