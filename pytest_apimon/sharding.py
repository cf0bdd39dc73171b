"""Who checks which interface when a run is split: xdist workers on one machine, shards across machines.

Plain Python (no pytest, no xdist import). Two splits, both deterministic functions of the collected items,
so that every participant computes the same answer on its own:

- `worker_share`: the items an xdist worker is handed up front and prefetches (each block of `workercount`
  consecutive items gives one to every worker, in a hashed rotation: every worker gets a similar mix of
  hosts, so per-host caps divided by the number of workers still add up to the configured cap, and failures
  that recur with a fixed stride are spread over the workers).
- `assign_shards`: the items of `--apimon-shard K/N` (services first, so a service's login happens on one
  shard; a service larger than a fair share is split by interface key).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORKER_ID = re.compile(r"gw(\d+)")
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def share_index(workerid: str, workercount: int) -> int | None:
    """The share (0-based) of xdist worker `workerid` ("gw0", "gw1", …) among `workercount` workers.

    None for a replacement worker (xdist starts "gwN" and up after a crash): it prefetches nothing and
    checks whatever it is handed one by one."""
    match = _WORKER_ID.fullmatch(workerid)
    if match is None:
        return None
    index = int(match.group(1))
    return index if index < workercount else None


def worker_share(n_items: int, index: int, workercount: int) -> list[int]:
    """Positions (ascending, in collection order) of the items worker `index` of `workercount` checks.

    The collection is cut into blocks of `workercount` consecutive items and each block gives one item to every
    worker, rotated by a hash of the block's number (_block_rotation). Shares differ by at most one item, and
    every worker gets a similar mix of hosts (so per-host caps divided among the workers still add up), as with
    plain round robin. Unlike round robin, items that fail with a fixed stride (the 3rd interface of every
    5-interface document, or every 20th interface) do not all land on one worker whenever the stride is a
    multiple of the worker count: that worker's concurrency (the total divided by the workers) then carried all
    their retries alone while the others sat idle (docs/scaling.md). The hash spreads them as evenly as chance
    does, for every stride."""
    count = max(1, workercount)
    share: list[int] = []
    for block in range(-(-n_items // count)):
        position = block * count + (index - _block_rotation(block)) % count
        if position < n_items:
            share.append(position)
    return share


def _block_rotation(block: int) -> int:
    """A well-mixed 32-bit hash of a block number: MurmurHash3's finalizer (fmix32; public domain), so that
    consecutive blocks, and blocks an arithmetic progression apart, get unrelated rotations. A multiplicative
    hash alone left visible patterns for strides such as 20 with 8 workers."""
    h = block & 0xFFFF_FFFF
    h ^= h >> 16
    h = (h * 0x85EB_CA6B) & 0xFFFF_FFFF
    h ^= h >> 13
    h = (h * 0xC2B2_AE35) & 0xFFFF_FFFF
    return h ^ (h >> 16)


def divide(total: int, parts: int) -> int:
    """Per-worker share of a limit (concurrency, per-host cap): never 0, and the sum never above `total`
    unless `total` < `parts`."""
    return max(1, total // max(1, parts))


@dataclass(frozen=True)
class Shard:
    """`--apimon-shard K/N`: this is shard `index` (1-based, like GitLab's CI_NODE_INDEX) of `total`."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str) -> Shard:
    """'2/3' → Shard(2, 3). Raises ValueError with the expected form for anything else (0/3, 4/3, 'a/b')."""
    match = _SHARD.fullmatch(text or "")
    if match is None:
        raise ValueError(f"expected K/N with 1 ≤ K ≤ N (e.g. 2/3), got {text!r}")
    index, total = int(match.group(1)), int(match.group(2))
    if total < 1 or not 1 <= index <= total:
        raise ValueError(f"expected K/N with 1 ≤ K ≤ N (e.g. 2/3), got {text!r}")
    return Shard(index, total)


def _digest(text: str) -> str:
    # Not Python's hash(): that is salted per process, and every shard must compute the same split.
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def assign_shards(entries: Sequence[tuple[str, str]], total: int) -> list[int]:
    """Shard (1-based) for each `(service, interface key)` entry, in the same order.

    Services are packed whole, largest first, onto the least-loaded shard (ties: the lower shard), so one
    service's interfaces (and its one login) stay together. A service with more interfaces than a fair share
    (ceil(len / total)) is cut into fair-share chunks in order of its interface keys' SHA-256 first. The result
    depends only on the entries, never on the order they come in or on the process.
    """
    total = max(1, total)
    if total == 1 or not entries:
        return [1] * len(entries)
    fair = math.ceil(len(entries) / total)
    by_service: dict[str, list[int]] = {}
    for pos, (service, _) in enumerate(entries):
        by_service.setdefault(service, []).append(pos)
    chunks: list[tuple[str, list[int]]] = []
    for service, positions in by_service.items():
        positions.sort(key=lambda p: (_digest(entries[p][1]), entries[p][1]))
        for start in range(0, len(positions), fair):
            chunks.append((f"{_digest(service)}:{start:09d}", positions[start:start + fair]))
    chunks.sort(key=lambda chunk: (-len(chunk[1]), chunk[0]))
    load = [0] * total
    shard_of = [1] * len(entries)
    for _, positions in chunks:
        target = min(range(total), key=lambda s: (load[s], s))
        load[target] += len(positions)
        for pos in positions:
            shard_of[pos] = target + 1
    return shard_of
