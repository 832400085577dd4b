"""What the server's background loops (hold expiry, publication, loop watch) share."""

import asyncio
import contextlib


async def cancel(task: "asyncio.Task[None] | None") -> None:
    """Cancel a background loop and wait until it has ended (None: nothing runs)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
