"""``python -m churn_engine``: the command line interface (see :mod:`churn_engine.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
