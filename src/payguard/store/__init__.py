"""Recorders: where events and decisions are made durable (SQLite default, memory for tests)."""

from payguard.store.base import LogFilter, Recorder, SealedRecords, StoredDecision
from payguard.store.memory import MemoryRecorder
from payguard.store.sqlite import SQLiteRecorder

__all__ = [
    "LogFilter",
    "MemoryRecorder",
    "Recorder",
    "SQLiteRecorder",
    "SealedRecords",
    "StoredDecision",
]
