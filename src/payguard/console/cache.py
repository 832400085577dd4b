"""A few seconds' memory for figures that cost a scan: the dashboard's and rules list's
counts over days of decisions, and the queue summary (a GROUP BY over every case not
closed). Pages show when the figures were counted; an analyst's own action still shows at
once on the case it changed, which is read fresh."""

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    """`get(key, compute)`: the value computed for `key` less than `ttl_s` ago, else a new
    one (computed outside the lock; two callers at once may both compute)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[Hashable, tuple[float, T]] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        now = self._clock()
        with self._lock:
            found = self._values.get(key)
        if found is not None and now - found[0] < self.ttl_s:
            return found[1]
        value = compute()
        with self._lock:
            self._values[key] = (now, value)
        return value
