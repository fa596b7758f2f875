"""``python -m segaudit.cli``: the same command line as ``segaudit``."""

from segaudit.cli.parser import main

if __name__ == "__main__":
    raise SystemExit(main())
