"""A board in one process's memory (tests, a single worker)."""

import threading

from payguard.board.base import Notice


class MemoryBoard:
    def __init__(self) -> None:
        self._notices: dict[str, Notice] = {}
        self._lock = threading.Lock()

    def post(self, topic: str, body: bytes) -> int:
        with self._lock:
            old = self._notices.get(topic)
            version = 1 if old is None else old.version + 1
            self._notices[topic] = Notice(topic, version, body)
            return version

    def versions(self) -> dict[str, int]:
        with self._lock:
            return {topic: notice.version for topic, notice in self._notices.items()}

    def read(self, topic: str) -> Notice | None:
        with self._lock:
            return self._notices.get(topic)

    def close(self) -> None:
        return None
