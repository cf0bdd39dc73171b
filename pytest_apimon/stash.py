"""What the pytest shell shares between its modules: the `config.stash` keys and the CLI-or-ini option lookup.

It lives apart from `plugin.py` so that `items.py`, `collector.py` and `fixtures.py` can read the run without
importing the hook module that imports them (no import cycle). pytest only: no core module imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the core is imported only once --apimon is given: this module loads in every pytest run
    from .alerts import Memory  # noqa: F401  (named in a StashKey subscript below)
    from .runstate import ApimonRun  # noqa: F401

__all__ = ["MEMORY_KEY", "RESTORE_LOGGING_KEY", "RUN_KEY", "TEMP_TOKENS_KEY", "apimon_option"]

RUN_KEY = pytest.StashKey["ApimonRun"]()
MEMORY_KEY = pytest.StashKey["Memory"]()
TEMP_TOKENS_KEY = pytest.StashKey[Path]()
RESTORE_LOGGING_KEY = pytest.StashKey[Callable[[], None]]()


def apimon_option(config: pytest.Config, name: str) -> str | None:
    """`--apimon-NAME`, else the `apimon_NAME` ini key, else None (pytest's getoption / getini)."""
    return config.getoption(f"apimon_{name}") or config.getini(f"apimon_{name}") or None
