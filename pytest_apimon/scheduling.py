"""The xdist scheduler of an apimon run: each worker is handed its whole share up front, so it can prefetch it.

Imported only when pytest-xdist is installed (plugin.py registers the hook then). It is xdist's own
`LoadScheduling` (its public scheduler module, returned through the public `pytest_xdist_make_scheduler` hook)
with one change: the first distribution gives worker gwK the items `sharding.worker_share(…, K, N)` in one
message instead of small chunks. The worker computes the same share from its `workerinput` and checks it
concurrently with the in-process Runner (plugin.pytest_runtestloop). Everything else is LoadScheduling's:
items of a crashed worker go back to the pending list and to the other or replacement workers (which check them
one by one), and `mark_test_pending` lets pytest-rerunfailures rerun the crashed item.
"""

from __future__ import annotations

from xdist.scheduler import LoadScheduling  # type: ignore[import-untyped]

from .sharding import share_index, worker_share


class ShareScheduling(LoadScheduling):
    """LoadScheduling whose first distribution is each worker's whole share (see the module docstring)."""

    def schedule(self) -> None:
        assert self.collection_is_completed
        # A replacement worker joined: LoadScheduling hands it pending items.
        if self.collection is not None:  # type: ignore[has-type]
            super().schedule()
            return
        if not self._check_nodes_have_same_collection():  # LoadScheduling's own check (it reports the diff)
            self.log("**Different tests collected, aborting run**")
            return
        collection: list[str] = next(iter(self.node2collection.values()))
        self.collection = collection
        # As LoadScheduling does: no cap on the chunks it sends later.
        if self.maxschedchunk is None:  # type: ignore[has-type]
            self.maxschedchunk = len(collection)
        count = self.numnodes
        given: set[int] = set()
        for node in self.nodes:
            index = share_index(str(node.workerinput.get("workerid", "")), count)
            if index is None:
                continue
            share = list(worker_share(len(collection), index, count))
            if share:
                given.update(share)
                self.node2pending[node].extend(share)
                node.send_runtest_some(share)
        # Shares of workers that died before the first distribution: LoadScheduling's pending list.
        self.pending[:] = [i for i in range(len(collection)) if i not in given]
        for node in self.nodes:
            self.check_schedule(node)  # sends pending items, or tells the node no more will come
