"""The exceptions an interface item raises when its interface is not healthy (no pytest import).

pytest-rerunfailures selects what to rerun by these types (retries.py passes `TransientFailure` as the
`flaky` marker's `only_rerun`), so the choice never depends on the wording of the failure text.
"""

from __future__ import annotations

from .categories import Category
from .results import InterfaceResult


class InterfaceFailure(Exception):
    """Raised by an item whose interface is not healthy; carries the classified result."""

    def __init__(self, result: InterfaceResult, details: str) -> None:
        super().__init__(result.headline())
        self.result = result
        self.details = details

    @staticmethod
    def of(result: InterfaceResult, details: str) -> InterfaceFailure:
        """The failure to raise for `result`: a `TransientFailure` when its category is transient."""
        transient = result.category is not None and Category(result.category).transient
        return (TransientFailure if transient else InterfaceFailure)(result, details)


class TransientFailure(InterfaceFailure):
    """A failure of a transient category (`Category.transient`): the only kind pytest-rerunfailures reruns,
    selected by this type (`only_rerun=[TransientFailure]`), not by the text of the headline."""
