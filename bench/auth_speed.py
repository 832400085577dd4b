"""The API-key check on the request path: authenticate a bearer secret (SHA-256, cache
lookup, the store's change counter) and take a token from the key's bucket.

    .venv/bin/python -m bench auth

Medians of `rounds` rounds of `n` checks each against a real `auth.db` holding `keys`
keys; microseconds per request.
"""

import statistics
import tempfile
import time
from pathlib import Path

from payguard.auth import Access


def run(n: int = 20_000, rounds: int = 5, keys: int = 100) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="payguard-auth-") as tmp:
        access = Access.open(Path(tmp), rate_per_s=10_000_000, burst=10_000_000)
        try:
            now = time.time_ns() // 1_000_000
            secrets = [
                access.create_key(["events:write"], name=f"k{i}", actor="bench", now_ms=now).secret
                for i in range(keys)
            ]
            check, auth, version = [], [], []
            for _ in range(rounds):
                start = time.perf_counter_ns()
                for i in range(n):
                    key = access.authenticator.authenticate(secrets[i % keys], now)
                    access.limiter.check(key.key_id, time.monotonic_ns())
                check.append((time.perf_counter_ns() - start) / n / 1_000)
                start = time.perf_counter_ns()
                for i in range(n):
                    access.authenticator.authenticate(secrets[i % keys], now)
                auth.append((time.perf_counter_ns() - start) / n / 1_000)
                start = time.perf_counter_ns()
                for _ in range(n):
                    access.keys.version()
                version.append((time.perf_counter_ns() - start) / n / 1_000)
        finally:
            access.close()
    return {
        "check_us_median": round(statistics.median(check), 2),
        "authenticate_us_median": round(statistics.median(auth), 2),
        "store_version_us_median": round(statistics.median(version), 2),
    }


if __name__ == "__main__":
    print(run())
