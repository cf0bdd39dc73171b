"""Who owns an interface and how urgent its problems are: `owner:` and `severity:` at three levels.

    Interface-pool/order/pay.yaml     interfaces[i].owner / .severity    (interface level)
                                      defaults.owner / .severity         (file level)
    config.yaml                       services.order.owner / .severity   (service level)
                                      notify.severity.default            (everything else; P1)

The most specific level wins. An owner is a WeCom/DingTalk userid, a mobile number, or a Feishu open_id;
several owners are a list. Severity decides who is @-mentioned and how often reminders repeat
(notify.severity.P0/P1/P2 in config.yaml; docs/wecom.md "Owners and severity").
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any


class Severity(str, Enum):
    P0 = "P0"  # wakes people: owners @-mentioned on NEW and on every reminder
    P1 = "P1"  # owners @-mentioned on NEW only
    P2 = "P2"  # never @-mentioned

    @property
    def rank(self) -> int:
        return int(self.value[1])


SEVERITIES = tuple(s.value for s in Severity)
_MOBILE = re.compile(r"\+?\d{5,15}")


def parse_severity(value: Any) -> Severity:
    """'P0' | 'p1' | 'P2' -> Severity. Raises ValueError naming the choices."""
    text = str(value).strip().upper() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if text in ("0", "1", "2"):
        text = "P" + text
    try:
        return Severity(text)
    except ValueError:
        raise ValueError(f"expected a severity ({', '.join(SEVERITIES)}), got {value!r}") from None


def parse_owners(value: Any) -> tuple[str, ...]:
    """A userid/mobile or a list of them -> tuple. Raises ValueError for anything else."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ValueError(f"expected a userid or mobile (or a list of them), got {item!r}")
        text = re.sub(r"[\s-]", "", str(item)) if _MOBILE.fullmatch(re.sub(r"[\s-]", "", str(item))) \
            else str(item).strip()
        if not text or (text.startswith("@") and text.lower() != "@all"):
            raise ValueError(f"{item!r} is not a userid or mobile: write the account id without '@' (e.g. zhangsan)")
        out.append(text)
    return tuple(dict.fromkeys(out))


def is_mobile(owner: str) -> bool:
    return bool(_MOBILE.fullmatch(owner))


def shown(owner: str) -> str:
    """An owner as people read it: a mobile number of 8 digits or more is masked to '138****1111' (its first
    three and last four digits), a userid is kept. The @-mention in a message's API fields keeps the full number
    (the platform needs it); every line a person reads (report, terminal, dry-run preview) uses this."""
    digits = owner.lstrip("+")
    if digits.isdigit() and len(digits) >= 8:
        return f"{owner[:len(owner) - len(digits)]}{digits[:3]}****{digits[-4:]}"
    return owner
