"""The exceptions an interface item raises when its interface is not healthy (no pytest import).

pytest-rerunfailures selects what to rerun by these types (retries.py passes `TransientFailure` as the
`flaky` marker's `only_rerun`), so the choice never depends on the wording of the failure text.
"""

from __future__ import annotations

from .categories import Category
from .errors import ApimonError
from .results import InterfaceResult


class InterfaceFailure(ApimonError):
    """Raised by an item whose interface is not healthy; carries the classified result."""

    def __init__(self, result: InterfaceResult, details: str) -> None:
        super().__init__(result.headline())
        self.result = result
        self.details = details

    @staticmethod
    def of(result: InterfaceResult, details: str) -> InterfaceFailure:
        """The failure to raise for `result`: a `TransientFailure` when its category is transient."""
        return (TransientFailure if is_transient(result) else InterfaceFailure)(result, details)


# The hang guard fired (runner.Runner): the check's own work outlasted every deadline it has. Not a slow network
# a retry may outlive, and each retry would cost the whole budget again: never transient, whatever its category.
HANG_SUB = "hang"


def is_transient(result: InterfaceResult) -> bool:
    """Whether a failed `result` is worth retrying: a transient category (`Category.transient`), except a
    hang-guard failure (HANG_SUB)."""
    return result.category is not None and Category(result.category).transient and result.sub != HANG_SUB


class TransientFailure(InterfaceFailure):
    """A failure of a transient category (`Category.transient`): the only kind pytest-rerunfailures reruns,
    selected by this type (`only_rerun=[TransientFailure]`), not by the text of the headline."""
