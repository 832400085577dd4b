"""Issue 11 probe: the generated feature code (`<payguard snapshot/update TYPE>`) compiled
with Cython as C extensions, against the same code run by CPython. Measurement only: the
product does not use it (docs/benchmarks.md, 2026-12-07 "compiled generated code").

Cython is not a project dependency; put it in a private directory first:

    pip download cython==3.3.1 --no-deps -d /tmp/cy
    pip install --target /tmp/cylib /tmp/cy/cython-3.3.1-*.whl

Then, from the repository root (gcc and the Python headers needed; modules are cached by
source hash in $CY_CACHE, default /tmp/payguard-cy, the first run compiles ~18 modules
in about 90 s):

    PYTHONPATH=src:. CY_LIB=/tmp/cylib python scripts/i11_speed/cython_probe.py \
        replay EVENTS.jsonl {python|cython}
    PYTHONPATH=src:. CY_LIB=/tmp/cylib python scripts/i11_speed/cython_probe.py \
        per-call EVENTS.jsonl WARM_EVENTS

`replay` is one in-process replay (bench.replay_speed._run_once: the `payguard replay`
loop), for rotated CPU runs or `valgrind --tool=callgrind` instruction counts; `per-call`
warms one engine on the first WARM_EVENTS events and times the payment, login and
transfer snapshots of the next 5,000 events, CPython's function and the compiled one on
the same state (each the best of 5 passes, CPU time), checking they write equal values.
"""

import hashlib
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import payguard.features.state as feature_state

CY_LIB = os.environ.get("CY_LIB", "/tmp/cylib")
CACHE = Path(os.environ.get("CY_CACHE", "/tmp/payguard-cy"))
OPT = "-O2"
_python_compile = feature_state.compile_function


def cython_function(source: str, name: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """`source` (defining `name`) as a Cython extension module, its globals set from
    `namespace` (declared as module globals so that Cython accepts the names)."""
    names = sorted(k for k in namespace if k != "__builtins__")
    digest = hashlib.sha256(f"{source}{OPT}{names}".encode()).hexdigest()[:16]
    module = f"pgf_{digest}"
    CACHE.mkdir(parents=True, exist_ok=True)
    so = CACHE / f"{module}.so"
    if not so.exists():
        pyx, c = CACHE / f"{module}.pyx", CACHE / f"{module}.c"
        header = "# cython: language_level=3, binding=False\n"
        pyx.write_text(header + "".join(f"{k} = None\n" for k in names) + source)
        env = {**os.environ, "PYTHONPATH": CY_LIB}
        cython = [sys.executable, "-m", "cython", str(pyx), "-o", str(c)]
        subprocess.run(cython, check=True, env=env)
        include = sysconfig.get_paths()["include"]
        flags = ["-shared", "-fPIC", "-fno-strict-aliasing", f"-I{include}"]
        subprocess.run(["gcc", OPT, *flags, str(c), "-o", str(so)], check=True)
    spec = importlib.util.spec_from_file_location(module, so)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    for key in names:
        setattr(loaded, key, namespace[key])
    function: Callable[..., Any] = getattr(loaded, name)
    return function


def use_cython() -> None:
    """Compile every feature snapshot and update function with Cython from now on."""

    def compile_function(
        source: str, label: str, name: str, namespace: dict[str, Any]
    ) -> Callable[..., Any]:
        if label.startswith(("snapshot", "update")):
            return cython_function(source, name, namespace)
        return _python_compile(source, label, name, namespace)

    feature_state.compile_function = compile_function  # type: ignore[assignment]


def replay(events: Path, mode: str) -> None:
    from bench.replay_speed import _run_once

    if mode == "cython":
        use_cython()
    with tempfile.TemporaryDirectory() as tmp:
        result = _run_once(events, Path(tmp))
    print(mode, {k: result[k] for k in ("events", "events_per_s", "events_per_cpu_s")})


def per_call(events: Path, warm: int) -> None:
    from payguard.config import load_settings
    from payguard.engine import Engine
    from payguard.generated import source_of

    lines = events.read_bytes().splitlines()
    tmp = tempfile.mkdtemp()
    env = {"PAYGUARD_DATA_DIR": f"{tmp}/data", "PAYGUARD_RULESET": "rules/default.yaml"}
    engine = Engine.open(load_settings(env=env))
    decode = engine.decoder.decode
    for line in lines[:warm]:
        engine.process(decode(line))
    state = engine.state.features  # type: ignore[attr-defined]
    following = [decode(line) for line in lines[warm : warm + 5000]]
    for event_type in ("payment", "login", "transfer"):
        chosen = [e for e in following if e.type == event_type]
        plan = (engine._plans.get(event_type) or engine._plan_for(event_type)).features
        python = plan.read
        namespace = {k: v for k, v in python.__globals__.items() if not k.startswith("__")}
        namespace.pop("read", None)
        compiled = cython_function(source_of(python), "read", namespace)
        best: dict[str, float] = {}
        for label, read in (("python", python), ("cython", compiled)) * 2:
            for _ in range(5):
                started = time.process_time()
                for event in chosen:
                    read(state.entities, event, plan.template.copy())
                took = (time.process_time() - started) / len(chosen) * 1e6
                best[label] = min(best.get(label, took), took)
        for event in chosen:
            a, b = plan.template.copy(), plan.template.copy()
            python(state.entities, event, a)
            compiled(state.entities, event, b)
            assert a == b, event
        print(event_type, len(chosen), {k: round(v, 1) for k, v in best.items()}, "µs a call")
    engine.close()


if __name__ == "__main__":
    sys.path.insert(0, CY_LIB)
    if sys.argv[1] == "replay":
        replay(Path(sys.argv[2]), sys.argv[3])
    else:
        per_call(Path(sys.argv[2]), int(sys.argv[3]))
