"""Display formatting shared by the terminal and HTML reports (money stays fen until here)."""

DASH = "—"


def cny(fen: int) -> str:
    """Integer fen as CNY with thousands separators, by integer arithmetic only."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def pct(ratio: float | None, digits: int = 1) -> str:
    return DASH if ratio is None else f"{100 * ratio:.{digits}f}%"


def duration(seconds: float | None) -> str:
    """Seconds in the largest unit that keeps the number readable."""
    if seconds is None:
        return DASH
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def number(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
