"""Sphinx extension: ship only the Font Awesome icons the site shows.

pydata-sphinx-theme gives every page all of Font Awesome twice, with no option to leave
it out: its web fonts (the theme's CSS draws ``fa-NAME`` icons and admonition symbols
with them; 270 kB loaded per page) and the SVG framework ``_static/scripts/fontawesome.js``
(1.5 MB of code and paths of every free icon) that swaps each ``<i class="fa-...">`` for
an SVG once the page has run its scripts. When the build has finished, this extension:

- keeps in each web font only the glyphs the site uses: those of the ``fa-NAME`` classes
  in the built pages and scripts, and the code points the theme's CSS writes itself
  (admonitions, the outline's arrow); fontTools' subsetter writes them;
- replaces ``fontawesome.js`` by a one-line script: the fonts already draw every icon.

Names are resolved to code points with the icon table inside the theme's own
``fontawesome.js``, so a theme update brings its icons along.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

FONTAWESOME = Path("_static", "scripts", "fontawesome.js")
WEBFONTS = Path("_static", "vendor", "fontawesome", "webfonts")
# An icon pack in the bundle: `var p={name:[width,height,[aliases],"unicode","path"],...}`.
PACK = re.compile(r"var p=\{([^{}]*)\}")
ICON = re.compile(
    r'(?P<name>"[^"]*"|[A-Za-z0-9_$]+):\[\d+,\d+,\[(?P<aliases>[^\]]*)\],"(?P<code>[0-9a-f]+)",'
    r'(?:"[^"]*"|\[[^\]]*\])\]'
)
USED = re.compile(r"\bfa-([a-z0-9-]+)")
# Font Awesome's own CSS, one rule per icon (`.fa-bars:before{content:"\f0c9"}`): not a use.
ICON_RULES = re.compile(r"(?:\.fa-[a-z0-9-]+(?::{1,2}(?:before|after))?,?)+\{[^}]*\}")
CSS_CODEPOINT = re.compile(r"\\([ef][0-9a-f]{3})\b|([\ue000-\uf8ff])")
STUB = (
    "/* Font Awesome's SVG framework is left out: the theme's web fonts (subset to the icons"
    " this site uses by tools/icon_subset.py) draw every icon. */\n"
)


def icon_table(script: str) -> dict[str, int]:
    """Every icon name and alias in Font Awesome's bundle, with its code point."""
    packs = PACK.findall(script)
    if len(packs) < 3:
        raise ValueError(f"found {len(packs)} icon packs, expected 3 (brands, regular, solid)")
    table: dict[str, int] = {}
    for body in packs:
        icons = list(ICON.finditer(body))
        if ",".join(m.group(0) for m in icons) != body:
            raise ValueError("an icon entry of an unexpected form")
        for icon in icons:
            aliases = [a.strip('"') for a in icon["aliases"].split(",") if a.startswith('"')]
            for name in (icon["name"].strip('"'), *aliases):
                table[name] = int(icon["code"], 16)
    return table


def used_codepoints(outdir: Path, table: dict[str, int]) -> set[int]:
    """Code points of the icons the built site names or its CSS draws itself."""
    codes: set[int] = set()
    for path in outdir.rglob("*"):
        if not path.is_file() or path.name == FONTAWESOME.name:
            continue
        if path.suffix in (".html", ".js"):
            text = path.read_text(errors="replace")
            codes |= {table[n] for n in USED.findall(text) if n in table}
        elif path.suffix == ".css":
            text = ICON_RULES.sub("", path.read_text(errors="replace"))
            for escaped, literal in CSS_CODEPOINT.findall(text):
                codes.add(int(escaped, 16) if escaped else ord(literal))
    return codes


def subset_font(source: Path, target: Path, codes: set[int]) -> None:
    """Write the font ``source`` (woff2 or ttf) to ``target`` with only the glyphs of ``codes``."""
    from fontTools import subset

    if source.suffix == ".woff2":
        try:
            import brotli  # noqa: F401  (fontTools writes woff2 with it)
        except ImportError:
            raise RuntimeError(
                "writing the Font Awesome subset needs brotli: pip install brotli "
                "(it is in requirements-dev.txt)"
            ) from None
    options = subset.Options()
    options.flavor = "woff2" if source.suffix == ".woff2" else None
    options.layout_features = ["*"]
    options.notdef_outline = True
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codes)
    subsetter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    subset.save_font(font, str(target), options)


def theme_static() -> Path:
    """The theme's own static files (the originals: the build's copies get rewritten)."""
    import pydata_sphinx_theme

    return Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme" / "static"


def _rewrite(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir, original = Path(app.outdir), theme_static()
    script = outdir / FONTAWESOME
    source = original / FONTAWESOME.relative_to("_static")
    if not script.exists() or not source.exists():
        return  # the theme no longer ships Font Awesome's script
    try:
        table = icon_table(source.read_text())
    except ValueError as problem:
        raise RuntimeError(
            f"tools/icon_subset.py cannot read {source} ({problem}): the theme changed its "
            "Font Awesome bundle; update the patterns in tools/icon_subset.py"
        ) from None
    codes = used_codepoints(outdir, table)
    for font in sorted((original / WEBFONTS.relative_to("_static")).glob("fa-*")):
        if font.suffix in (".woff2", ".ttf"):
            subset_font(font, outdir / WEBFONTS / font.name, codes)
    script.write_text(STUB)
    script.with_name(script.name + ".map").unlink(missing_ok=True)


def setup(app: Any) -> dict:
    app.connect("build-finished", _rewrite)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
