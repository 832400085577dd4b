"""Diagnostics injected into `payguard serve` by bench.pause_causes (any code tree, so
today's main as well as the branch): every collection (wall and CPU time, generation,
what generation 2 held at the first full ones), the event loop's lag (a task on
uvicorn's loop), and every fork's duration. Dumped as JSON to $DIAG_DIR/diag-PID.json
when asked (a `dump` file there) and at exit. Only acts in a process whose arguments
name `serve`."""

import atexit
import collections
import contextlib
import gc
import json
import os
import sys
import threading
import time

_rec = {"colls": [], "gen2_types": []}
_t = [0.0]


def _cb(phase, info):
    if phase == "start":
        if info["generation"] == 2 and len(_rec["gen2_types"]) < 6:
            objs = gc.get_objects(2)
            c = collections.Counter(type(o).__name__ for o in objs)
            _rec["gen2_types"].append({"n": len(objs), "top": c.most_common(15), "at": time.time()})
            del objs
        _t[0] = time.perf_counter()
        _t.append(time.thread_time())
    else:
        cpu = time.thread_time() - _t.pop()
        _rec["colls"].append(
            (
                info["generation"],
                round((time.perf_counter() - _t[0]) * 1e3, 3),
                time.time(),
                info.get("collected", 0),
                round(cpu * 1e3, 3),
            )
        )


gc.callbacks.append(_cb)


def _dump():
    if any("serve" in a for a in sys.argv):
        out = os.environ.get("DIAG_DIR", ".")
        with open(f"{out}/diag-{os.getpid()}.json", "w") as fh:
            json.dump(_rec, fh)


atexit.register(_dump)


def _periodic():
    """Dump when bench.pause_causes asks (a `dump` file in DIAG_DIR), not every few
    seconds: serialising the growing record held the GIL for tens of ms, a stall of the
    server under test that the diagnostics themselves caused."""
    flag = os.path.join(os.environ.get("DIAG_DIR", "."), "dump")
    while True:
        time.sleep(0.5)
        if os.path.exists(flag):
            with contextlib.suppress(Exception):
                _dump()
            return


threading.Thread(target=_periodic, daemon=True).start()

# -- loop lag (both trees: wraps uvicorn's main loop) and fork timing -------------------
_rec["lag"] = []  # (t, lag_s) for lags > 20 ms
_rec["lag_max"] = [0.0]
_rec["lag_n"] = [0]
_rec["forks"] = []  # (t, seconds)
_tick = [time.perf_counter()]  # when the lag task last ran (tracing.py's watchdog reads it)
if any("serve" in a for a in sys.argv):
    import asyncio

    try:
        import uvicorn.server as _us

        _orig_main_loop = _us.Server.main_loop

        async def _lag_task():
            loop = asyncio.get_running_loop()
            while True:
                due = loop.time() + 0.01
                await asyncio.sleep(0.01)
                _tick[0] = time.perf_counter()
                lag = loop.time() - due
                _rec["lag_n"][0] += 1
                if lag > _rec["lag_max"][0]:
                    _rec["lag_max"][0] = lag
                if lag > 0.02:
                    _rec["lag"].append((time.time(), round(lag, 4)))

        async def _main_loop(self):
            self._i16_lag = asyncio.create_task(_lag_task())
            await _orig_main_loop(self)

        _us.Server.main_loop = _main_loop
    except Exception as exc:  # pragma: no cover
        _rec["err"] = repr(exc)
    _orig_fork = os.fork

    def _timed_fork():
        t = time.perf_counter()
        pid = _orig_fork()
        if pid != 0:
            _rec["forks"].append((time.time(), round(time.perf_counter() - t, 4)))
        return pid

    os.fork = _timed_fork

    # -- what ran when a request was late (tracing.py) ----------------------------------
    try:
        import tracing

        tracing.install(_rec, _tick)
    except Exception as exc:  # pragma: no cover - a tree the tracing does not fit
        _rec["tracing_error"] = repr(exc)
