"""Re-vendor the browser assets: NHS.UK frontend, htmx and Swagger UI for the app, axe-core for the tests.

Run from the repository root with npm on PATH (it needs the npm registry, nothing else):

    python docs/vendor_web_assets.py                      # the pinned versions below
    python docs/vendor_web_assets.py --nhsuk 10.6.1 --htmx 2.0.11 --axe 4.14.1

It `npm pack`s each package into a temporary directory, copies only the compiled, minified CSS/JS, the
images the CSS refers to, the favicons and the licence, and writes a VERSION file with the npm tarball
integrity. Nothing else (no Sass, no source maps) is kept.

The NHS.UK CSS is upstream's `nhsuk-frontend-<v>.min.css` with exactly three mechanical edits, each
asserted here and recorded in SOURCES.md:

1. the two `@font-face` rules for Frutiger, which load fonts from https://assets.nhs.uk, are removed
   (Frutiger is licensed to the NHS and is not in the npm package; the CSS falls back to Arial);
2. `url(/assets/...)` becomes `url(assets/...)`, relative to the CSS file, so the images resolve under
   /static/nhsuk/ instead of the site root;
3. the `sourceMappingURL` comment is removed (the map is not vendored).

The JavaScript files are byte-identical to the tarball's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATIC = REPO / "procurement" / "web" / "static"
AXE_DIR = REPO / "tests" / "support" / "axe"

NHSUK_LICENSE = """MIT License

Copyright (c) 2019 NHS.UK

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""
# The npm tarball has no licence file; this is LICENSE from https://github.com/nhsuk/nhsuk-frontend.

# Favicons the base template links to (the CSS's own images are found by scanning it).
NHSUK_ICONS = ("favicon.ico", "favicon.svg", "nhsuk-icon-180.png", "nhsuk-icon-mask.svg")

FONT_FACE = re.compile(r"@font-face\{[^}]*assets\.nhs\.uk[^}]*\}")
SOURCE_MAP = re.compile(r"\n?/\*# sourceMappingURL=[^*]*\*/\s*$")


def npm_pack(spec: str, into: Path) -> tuple[dict[str, str], Path]:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not on PATH (apt-get install npm)")
    out = subprocess.run(  # noqa: S603 - fixed argv; the spec is a package@version from the command line
        [npm, "pack", spec, "--json", "--pack-destination", str(into)],
        check=True,
        capture_output=True,
        text=True,
        cwd=into,
    )
    info = json.loads(out.stdout)[0]
    tgz = into / info["filename"]
    root = into / info["name"]
    root.mkdir()
    with tarfile.open(tgz) as tar:
        tar.extractall(root, filter="data")
    meta = {
        "package": info["name"],
        "version": info["version"],
        "integrity": info["integrity"],
        "shasum": info["shasum"],
        "tarball": f"https://registry.npmjs.org/{info['name']}/-/{info['filename']}",
    }
    return meta, root / "package"


def write_version(target: Path, meta: dict[str, str], files: list[str]) -> None:
    lines = [f"{k}: {v}" for k, v in meta.items()]
    lines.append("files (sha256):")
    lines += [f"  {name} {hashlib.sha256((target / name).read_bytes()).hexdigest()}" for name in sorted(files)]
    (target / "VERSION").write_text("\n".join(lines) + "\n")


def fresh(target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    return target


def vendor_nhsuk(version: str, work: Path) -> dict[str, str]:
    meta, pkg = npm_pack(f"nhsuk-frontend@{version}", work)
    v = meta["version"]
    dist = pkg / "dist" / "nhsuk"
    target = fresh(STATIC / "nhsuk")
    css = (dist / f"nhsuk-frontend-{v}.min.css").read_text()
    css, fonts = FONT_FACE.subn("", css)
    assert fonts == 2, f"expected 2 Frutiger @font-face rules, found {fonts}"
    css, rewrites = re.subn(r"url\(/assets/", "url(assets/", css)
    assert rewrites > 0, "no url(/assets/...) found: has the upstream layout changed?"
    css, maps = SOURCE_MAP.subn("\n", css)
    assert maps == 1
    assert "http://" not in css, "remote URL left in the CSS"
    assert "https://" not in css, "remote URL left in the CSS"
    (target / f"nhsuk-frontend-{v}.min.css").write_text(css)
    js = f"nhsuk-frontend-{v}.min.js"
    shutil.copyfile(dist / js, target / js)
    images = sorted(set(re.findall(r"url\(assets/images/([^)]+)\)", css)) | set(NHSUK_ICONS))
    (target / "assets" / "images").mkdir(parents=True)
    for name in images:
        shutil.copyfile(dist / "assets" / "images" / name, target / "assets" / "images" / name)
    (target / "LICENSE").write_text(NHSUK_LICENSE)
    files = [f"nhsuk-frontend-{v}.min.css", js, "LICENSE", *(f"assets/images/{n}" for n in images)]
    write_version(target, meta, files)
    meta["edits"] = f"removed {fonts} @font-face rules; rewrote {rewrites} url(/assets/ -> url(assets/"
    return meta


def vendor_htmx(version: str, work: Path) -> dict[str, str]:
    meta, pkg = npm_pack(f"htmx.org@{version}", work)
    target = fresh(STATIC / "htmx")
    name = f"htmx-{meta['version']}.min.js"
    shutil.copyfile(pkg / "dist" / "htmx.min.js", target / name)
    shutil.copyfile(pkg / "LICENSE", target / "LICENSE")
    write_version(target, meta, [name, "LICENSE"])
    return meta


def vendor_axe(version: str, work: Path) -> dict[str, str]:
    meta, pkg = npm_pack(f"axe-core@{version}", work)
    target = fresh(AXE_DIR)
    for name in ("axe.min.js", "LICENSE", "LICENSE-3RD-PARTY.txt"):
        shutil.copyfile(pkg / name, target / name)
    write_version(target, meta, ["axe.min.js", "LICENSE", "LICENSE-3RD-PARTY.txt"])
    return meta


def vendor_swagger(version: str, work: Path) -> dict[str, str]:
    """Swagger UI for /schema/swagger: the bundle and its CSS (versioned names, so they cache), licence, notice."""
    meta, pkg = npm_pack(f"swagger-ui-dist@{version}", work)
    v = meta["version"]
    target = fresh(STATIC / "swagger-ui")
    js, css = f"swagger-ui-bundle-{v}.js", f"swagger-ui-{v}.css"
    shutil.copyfile(pkg / "swagger-ui-bundle.js", target / js)
    text, maps = SOURCE_MAP.subn("\n", (pkg / "swagger-ui.css").read_text())
    assert maps == 1
    (target / css).write_text(text)
    for name in ("LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"):
        shutil.copyfile(pkg / name, target / name)
    write_version(target, meta, [js, css, "LICENSE", "NOTICE", "swagger-ui-bundle.js.LICENSE.txt"])
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nhsuk", default="10.6.1")
    parser.add_argument("--htmx", default="2.0.11")
    parser.add_argument("--axe", default="4.14.1")
    parser.add_argument("--swagger", default="5.36.0")
    parser.add_argument("--only", choices=("nhsuk", "htmx", "axe", "swagger"), help="re-vendor just this one")
    args = parser.parse_args()
    steps = {"nhsuk": vendor_nhsuk, "htmx": vendor_htmx, "axe": vendor_axe, "swagger": vendor_swagger}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, step in steps.items():
            if args.only in (None, name):
                print(json.dumps(step(getattr(args, name), work)))
    print("now update procurement/web/static/SOURCES.md and the version constants in procurement/web/setup.py")


if __name__ == "__main__":
    main()
