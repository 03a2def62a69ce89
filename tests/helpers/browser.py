"""Headless chromium (Debian's package; scripts/setup_chromium.sh installs it): load a page from the
file system, report its broken images, take a screenshot."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

# Appended to a copy of the page beside it (same folder: relative links resolve alike); after load
# it writes what every <img> did into the DOM, which --dump-dom prints.
PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}));
  const out = document.createElement('pre'); out.id = 'probe';
  out.textContent = JSON.stringify({images: imgs, width: document.body.scrollWidth});
  document.body.appendChild(out);
});</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(page: Path, *flags: str) -> subprocess.CompletedProcess:
    exe = chromium()
    assert exe is not None
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
           "--virtual-time-budget=10000", *flags, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def image_states(page: Path) -> dict:
    """{"images": [{"alt", "ok"}...], "width": px} as the browser saw them after loading ``page``."""
    probe = page.with_name(f".probe_{page.name}")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    try:
        dom = _run(probe, "--dump-dom").stdout
    finally:
        probe.unlink()
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run; chromium printed:\n{dom[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def screenshot(page: Path, target: Path, width: int = 1366, height: int = 2400) -> Path:
    result = _run(page, f"--screenshot={target.resolve()}", f"--window-size={width},{height}",
                  "--hide-scrollbars")
    assert target.is_file(), result.stderr[-2000:]
    return target
