"""``python -m modelscan_lite``: the same CLI as the ``modelscan-lite`` console script."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
