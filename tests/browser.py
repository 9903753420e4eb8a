"""Headless Chromium for layout tests: Debian's `chromium-headless-shell` package (or a
`chromium` that runs headless) lays out a page, a script appended to a copy of the page writes
what it measured into the DOM, and `--dump-dom` returns it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CANDIDATES = ("chromium-headless-shell", "/usr/lib/chromium/headless_shell", "/usr/lib/chromium/chromium-headless-shell",
              "chromium", "chromium-browser")
INSTALL = ("headless Chromium is needed to lay out report pages: install Debian's package "
           "(`sudo apt-get install chromium-headless-shell`, or `chromium`) and run the tests again")

MEASURE = """<script>
const tables = [...document.querySelectorAll("table")].map(table => ({
  table: table.dataset.table, scrollWidth: table.scrollWidth,
  clientWidth: table.parentElement.clientWidth, containerScrollWidth: table.parentElement.scrollWidth}));
const out = document.createElement("pre");
out.id = "measurements";
out.textContent = JSON.stringify({tables, page: document.documentElement.scrollWidth});
document.body.appendChild(out);
</script>"""


def chromium() -> str:
    """The headless Chromium binary; the calling test fails (never skips) without one."""
    for name in CANDIDATES:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    pytest.fail(INSTALL)


def table_overflow(page: str, directory: Path, width: int = 800) -> list[dict]:
    """Each table's scrollWidth and its container's clientWidth, in a `width`-pixel viewport."""
    path = directory / "measured.html"
    path.write_text(page.replace("</body>", MEASURE + "</body>", 1))
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={directory / 'profile'}", f"--window-size={width},1100", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="measurements">(.*?)</pre>', done.stdout, re.S)
    assert found, f"Chromium measured nothing (exit {done.returncode}): {done.stderr[-2000:]}"
    measured = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert measured["page"] <= width, f"the page is {measured['page']} px wide in a {width} px viewport"
    return measured["tables"]
