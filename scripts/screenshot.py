"""Screenshot an HTML report for the docs (README's closed-loop and backtest images).

    .venv/bin/python scripts/screenshot.py /tmp/loop.html docs/img/closed-loop.png

Opens the file in Debian's chromium (`/usr/bin/chromium`; `apt-get install -y chromium`
when missing) through Playwright, at a fixed width, and writes the page from its top down
to at most `--max-height` pixels (the images in the docs are 1280 wide and cut where the
report's first tables end, so a longer report does not make a taller README). The
reports are self-contained files, so nothing is fetched and the same report gives the
same image.
"""

import argparse
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the HTML report to open")
    parser.add_argument("png", type=Path, help="the image to write")
    parser.add_argument("--width", type=int, default=1280, help="viewport width (px)")
    parser.add_argument("--max-height", type=int, default=2300, help="cut the page here (px)")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM, help="browser executable")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"screenshot: no such report: {args.html}", file=sys.stderr)
        return 2
    if not args.chromium.exists():
        print(f"screenshot: no browser at {args.chromium} (apt-get install -y chromium)",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.width <= 0 or args.max_height <= 0:
        print("screenshot: --width and --max-height must be positive", file=sys.stderr)
        return 2
    shoot(args.html, args.png, args.width, args.max_height, args.chromium)
    print(f"wrote {args.png}")
    return 0


def shoot(html: Path, png: Path, width: int, max_height: int, chromium: Path) -> None:
    """Render `html` at `width` and write its top `max_height` pixels (or less) to `png`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium))
        try:
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.goto(html.resolve().as_uri())
            height = min(max_height, page.evaluate("document.documentElement.scrollHeight"))
            png.parent.mkdir(parents=True, exist_ok=True)
            clip = {"x": 0, "y": 0, "width": width, "height": height}
            page.screenshot(path=str(png), full_page=True, clip=clip)
        finally:
            browser.close()


if __name__ == "__main__":
    sys.exit(main())
