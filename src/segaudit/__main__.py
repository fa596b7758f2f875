"""``python -m segaudit``: the same command line as ``segaudit``."""

from segaudit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
