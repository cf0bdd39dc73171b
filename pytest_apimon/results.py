"""Per-interface results and the run they belong to. Plain data, dict round-trip for xdist."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from .categories import Category, Outcome


@dataclass
class InterfaceResult:
    nodeid: str
    service: str
    module: str
    name: str
    method: str = ""
    url: str = ""
    outcome: Outcome = Outcome.PASSED
    category: Category | None = None  # when failed
    sub: str = ""
    reason: str = ""  # one human line; for skipped: the skip reason
    login_service: str = ""  # auth/login failures: the service whose login failed (`auth: admin` → admin)
    status: int | None = None
    elapsed_ms: float | None = None
    attempts: int = 1
    file: str = ""
    line: int | None = None
    tags: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)  # from the document; the service's are added on the controller
    severity: str = ""  # P0 | P1 | P2 from the document; "" = the service's / the default
    started_at: float | None = None  # epoch seconds
    retry_after: float | None = None  # seconds the response's Retry-After asked for (failed checks only)
    # Identity in the run's memory (policy.interface_key): "service/name" for an interface whose name is unique
    # in its service; a duplicate or a whole-file document error gets a file-qualified key (items.py).
    key: str = ""
    pool: str = ""  # the Interface-pool it came from (a run only forgets interfaces of the pools it covered)
    circuit_open: bool = False  # skipped because its circuit is open: last known down (counts as down)
    # Skipped because the run ended without checking it (an xdist worker died and was not replaced;
    # collector.py): neither up nor down, its alert state is left as it was; `reason` says why.
    unchecked: bool = False
    # Of `unchecked`: its stored alert state says down (the last known state; alerts.mark_known_down): still down
    # as far as the monitor knows, so it counts as down in every output (report.is_down), as an open circuit does.
    known_down: bool = False
    # Masked excerpts for the report details (never raw secrets).
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    reproduce: str = ""
    # Passed but slower than expect.warn_ms (degraded); `reason` stays empty for passed results.
    slow: bool = False
    warn_ms: float | None = None  # failures: one masked `curl` line that repeats the request (reproduce.py)
    # The maintenance window its service was in during this run (maintenance.py; set on the controller):
    # checked and recorded, not alerted. "" = none.
    maintenance: str = ""
    # HTTPS origin -> its certificate's notAfter (epoch seconds) as this check saw it (certs.py); every outcome.
    certificates: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Built from plain strings too (xdist's dict, the history): hold the enums. Raises ValueError.
        self.outcome = Outcome(self.outcome)
        self.category = Category.coerce(self.category)

    def to_dict(self) -> dict[str, Any]:
        # Shallow, with the containers copied: dataclasses.asdict walks every value recursively and was a
        # visible share of the per-item cost on the main thread (docs/benchmarks.md); the fields are flat.
        data = dict(self.__dict__)
        data["tags"] = list(self.tags)
        data["certificates"] = dict(self.certificates)
        for key in ("request_headers", "response_headers"):
            data[key] = dict(data[key])
        # Plain builtins only (xdist's execnet serialises no str subclasses): enums become their values.
        data["outcome"] = Outcome(self.outcome).value
        data["category"] = None if self.category is None else Category(self.category).value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InterfaceResult:
        return cls(**{k: v for k, v in data.items() if k in _FIELDS})

    def headline(self, lang: str = "zh") -> str:
        """The classified first line, e.g.
        '[unavailable] user/账户 · 获取用户信息 · GET https://…/api/v1/profile → 503 in 12 ms'."""
        tag = f"[{self.category}] " if self.category else ""
        where = f"{self.service}/{self.module} · {self.name}"
        target = f"{self.method} {self.url}".strip()
        # Transport failures may still carry a status (a body cut by the deadline): say why instead.
        if self.status is not None and self.category not in (Category.TIMEOUT, Category.NETWORK):
            result = f"→ {self.status}"
        else:
            result = f"→ {self.reason}" if self.reason else ""
        timing = f" in {self.elapsed_ms:.0f} ms" if self.elapsed_ms is not None else ""
        parts = [p for p in (where, target) if p]
        return f"{tag}{' · '.join(parts)} {result}{timing}".rstrip()


# The field names, once: from_dict runs per report on the xdist controller (dataclasses.fields() builds a tuple
# of Field objects on every call).
_FIELDS = frozenset(f.name for f in fields(InterfaceResult))

# What each field of a record read back from a file must hold (record_problem). The annotations are strings
# (`from __future__ import annotations`), so the table is read from them once.
EPOCH_MAX = 253_402_300_799.0  # 9999-12-31T23:59:59Z: the last second datetime.fromtimestamp and the reports render
_KINDS: dict[str, str] = {f.name: str(f.type).replace(" | None", "?") for f in fields(InterfaceResult)}
_REQUIRED = ("nodeid", "service", "module", "name")
_EXPECTED = {"str": "a string", "int": "an integer", "float": "a finite number", "bool": "true or false",
             "list[str]": "a list of strings", "dict[str, str]": "an object of strings",
             "dict[str, float]": "an object of finite numbers",
             "Outcome": "one of " + ", ".join(o.value for o in Outcome),
             "Category": "one of " + ", ".join(c.value for c in Category)}


def finite_number(value: object, low: float = float("-inf"), high: float = float("inf")) -> bool:
    """`value` is an int or float (not a bool), finite and within [low, high]."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and low <= value <= high)


_CHECKS: dict[str, Callable[[object], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": finite_number,
    "bool": lambda v: isinstance(v, bool),
    "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "dict[str, str]": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
    "dict[str, float]": lambda v: isinstance(v, dict) and all(finite_number(x) for x in v.values()),
    "Outcome": lambda v: isinstance(v, str) and v in {o.value for o in Outcome},
    "Category": lambda v: isinstance(v, str) and v in {c.value for c in Category},
}


def _fits(kind: str, value: object) -> bool:
    if kind.endswith("?"):
        return value is None or _fits(kind[:-1], value)
    check = _CHECKS.get(kind)
    return check is None or check(value)


def record_problem(data: object) -> str | None:
    """What keeps `data` (a record read back from a file, e.g. a shard's results) from being an InterfaceResult
    every report can render: "FIELD: expected …" (the field's name, then its type in words), or None when
    `InterfaceResult.from_dict(data)` is safe. Unknown fields are ignored, as from_dict ignores them; epoch
    seconds (`started_at`, certificate dates) must lie between 1970 and 9999."""
    if not isinstance(data, dict):
        return f"expected an object with {', '.join(repr(k) for k in _REQUIRED)}, not {type(data).__name__}"
    for key in _REQUIRED:
        if key not in data:
            return f"{key}: missing (expected a string)"
    for key, value in data.items():
        kind = _KINDS.get(key) if isinstance(key, str) else None
        if kind is None:
            continue
        if not _fits(kind, value):
            return f"{key}: expected {_EXPECTED[kind.rstrip('?')]}{' or null' if kind.endswith('?') else ''}"
        epochs = [value] if key == "started_at" else list(value.values()) if key == "certificates" else []
        if any(v is not None and not finite_number(v, 0, EPOCH_MAX) for v in epochs):
            return f"{key}: expected epoch seconds between 0 and {EPOCH_MAX:.0f}"
    return None


@dataclass
class RunResult:
    started_at: float  # epoch seconds
    finished_at: float
    env: str
    results: list[InterfaceResult] = field(default_factory=list)
    proxy: str | None = None  # the proxy in use (from HTTP_PROXY/HTTPS_PROXY), shown in the report header
    # The monitor itself rate-limited: host -> 429 answers this run (every attempt counted), and the concurrency
    # to that host it was lowered to (single-process runs; absent under xdist, one request per worker at a time).
    rate_limited: dict[str, int] = field(default_factory=dict)
    host_caps: dict[str, int] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return max(0.0, self.finished_at - self.started_at)
