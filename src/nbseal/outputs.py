"""Sealed outputs: what a sealed kernel shows may not act in the user's page.

JupyterLab and Notebook 7 trust every output produced by running a cell: a
script in one runs at once, with the page's cookies, and can call the Jupyter
server's REST API (write host files, open a terminal, start an unsealed
kernel). So the proxy passes a sealed kernel's outputs through this policy,
per MIME type (docs/security.md says why each is treated as it is):

- passive types (text, images, JSON, widget references) pass unchanged;
- ``text/html`` is cleaned by an allow-list sanitiser (ammonia, through
  ``nh3``): no script, no ``on*`` attribute, no ``javascript:`` URL, no
  iframe, object, embed or form, no ``data-*`` attribute (JupyterLab runs
  commands named by ``data-commandlinker-command``); ``<style>`` is kept,
  without ``@import`` or ``url(``;
- ``text/markdown`` passes when it holds no raw HTML and no active link;
  otherwise it is rendered to HTML and cleaned the same way;
- ``image/svg+xml`` keeps only the SVG elements and attributes of an
  allow-list (no script, no event handler, no link, no ``foreignObject``,
  references only within the image or to data: images);
- LaTeX (``text/latex``, and math inside HTML or Markdown) loses the MathJax
  commands that make links, classes, styles or load extensions;
- everything else (JavaScript, and renderers that run code the output
  names: Vega, Plotly, Bokeh, ...) is withheld, and says so.

``#seal allow javascript`` turns the policy off for the notebook. The same
policy cleans the string state of the standard ipywidgets models and refuses
models that bring their own JavaScript (anywidget's ``_esm``, third-party
widget packages).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "PASSIVE_TYPES",
    "WIDGET_MODULES",
    "WITHHELD_NOTE",
    "clean_html",
    "clean_latex",
    "clean_markdown",
    "clean_svg",
    "seal_bundle",
    "seal_output",
    "seal_widget_state",
]

# Shown in place of a bundle the policy emptied.
WITHHELD_NOTE = (
    "nbseal: output withheld from the page ({types}): sealed kernels' outputs cannot "
    "run code in the browser; add `#seal allow javascript` to show it"
)

# Rendered by JupyterLab without running anything the output names.
PASSIVE_TYPES = frozenset(
    {
        "text/plain",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "application/json",
        "application/vnd.jupyter.widget-view+json",
        "application/vnd.jupyter.stdout",
        "application/vnd.jupyter.stderr",
    }
)

# The standard widget models; anything else brings JavaScript of its own.
WIDGET_MODULES = frozenset(
    {"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"}
)
# String state the standard widgets render as HTML.
_WIDGET_HTML_FIELDS = {
    "HTMLModel": ("value", "placeholder"),
    "HTMLMathModel": ("value", "placeholder"),
}

# -- HTML --------------------------------------------------------------------
_HTML_TAGS = frozenset(
    {
        "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code",
        "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em",
        "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
        "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s",
        "samp", "small", "span", "strike", "strong", "style", "sub", "summary", "sup",
        "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul",
        "var", "wbr", "center", "font",
    }
)  # fmt: skip
_HTML_ATTRIBUTES = {
    "*": {"class", "id", "title", "style", "align", "valign", "width", "height", "dir", "lang"},
    "a": {"href", "name"},
    "img": {"src", "alt"},
    "td": {"colspan", "rowspan", "headers", "scope"},
    "th": {"colspan", "rowspan", "headers", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "style": {"type", "media"},
    "ol": {"start", "type", "reversed"},
    "font": {"color", "size", "face"},
    "table": {"border", "cellpadding", "cellspacing", "summary"},
    "time": {"datetime"},
    "details": {"open"},
}
_URL_SCHEMES = frozenset({"http", "https", "mailto", "data"})
# CSS that reaches outside the output (other files, old script hooks); a
# url() of an inline image (data:image/...) stays.
_CSS_ACTIVE = re.compile(
    r"@import|url\s*\((?!\s*['\"]?\s*data:image/(?:png|jpeg|gif|webp|bmp)[;,])"
    r"|expression\s*\(|-moz-binding|behavior\s*:",
    re.I,
)
# A data: URL an image may have (no data:text/html, no SVG with scripts).
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|bmp);", re.I)
# What a sealed HTML output loses that leaves a hole where it was drawn.
_HTML_ACTIVE = re.compile(r"<(script|iframe|object|embed)\b", re.I)
HTML_WITHHELD_NOTE = (
    '<p class="nbseal-withheld"><em>nbseal: scripts and frames were removed from this '
    "output (sealed outputs); add <code>#seal allow javascript</code> to show it as "
    "it is</em></p>"
)


def _clean_css(css: str) -> str:
    # No CSS escapes (u\\72l( is url(), to a browser) and no markup.
    css = css.replace("\\", "").replace("<", " ")
    return _CSS_ACTIVE.sub("/* removed by nbseal */", css)


def _clean_style_blocks(html: str) -> str:
    """The CSS of every ``<style>`` block in sanitised ``html`` cleaned (linear in its length).

    Runs on the sanitiser's output, where a style element's text is raw and
    ends at the first ``</style``; an unclosed block runs to the end.
    """
    lowered = html.lower()
    parts, position = [], 0
    while (start := lowered.find("<style", position)) >= 0:
        opened = lowered.find(">", start)
        if opened < 0:
            break
        closed = lowered.find("</style", opened)
        closed = len(html) if closed < 0 else closed
        parts += [html[position : opened + 1], _clean_css(html[opened + 1 : closed])]
        position = closed
    parts.append(html[position:])
    return "".join(parts)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style":
        cleaned = _clean_css(value)
        return None if cleaned != value.replace("\\", "").replace("<", " ") else cleaned
    if attribute in {"src", "href"} and value.lower().lstrip().startswith("data:"):
        return value if tag == "img" and _DATA_IMAGE.match(value.strip()) else None
    return value


# Larger HTML is withheld, not cleaned: the sanitiser's parser slows down
# more than linearly on deeply nested markup (20,000 nested divs, 300 KB,
# take 1.5 s), and it runs on the proxy's event loop.
HTML_LIMIT = 1024 * 1024


def clean_html(html: str, *, note: bool = True) -> str | None:
    """``html`` with nothing that can act (see the module's docstring); None: too large.

    With ``note``, removed scripts or frames leave :data:`HTML_WITHHELD_NOTE`
    in their place (an output; a widget's value gets none).
    """
    if len(html) > HTML_LIMIT:
        return None
    import nh3  # about 10 ms to import; only sealed HTML needs it

    cleaned = nh3.clean(
        html,
        tags=set(_HTML_TAGS),
        clean_content_tags={"script"},
        attributes={tag: set(names) for tag, names in _HTML_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(_URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    cleaned = clean_latex(_clean_style_blocks(cleaned))
    if note and _HTML_ACTIVE.search(html):
        # What the scripts or frames drew is gone: say why, where it was.
        cleaned = HTML_WITHHELD_NOTE + cleaned
    return cleaned


# -- LaTeX -------------------------------------------------------------------
# MathJax commands that make links, attach classes, ids, styles or raw HTML,
# or load extensions (\require).
_LATEX_ACTIVE = re.compile(
    r"\\(href|url|class|cssId|style|html[A-Za-z]*|data|require|unicode|mmlToken)(?![A-Za-z])"
)


def clean_latex(text: str) -> str:
    """``text`` with MathJax's active commands neutralised (shown, not run)."""
    return _LATEX_ACTIVE.sub(r"\\text{\\\\\1}", text)


# -- Markdown ------------------------------------------------------------------
_RAW_HTML = re.compile(r"<[A-Za-z/!?]")
_ACTIVE_LINK = re.compile(r"(javascript|vbscript|data|file)\s*:", re.I)


def clean_markdown(text: str) -> tuple[str, str | None]:
    """``(mime, value)``: the Markdown when passive, else cleaned HTML (None: too large)."""
    if not _RAW_HTML.search(text) and not _ACTIVE_LINK.search(text):
        return "text/markdown", clean_latex(text)
    import mistune

    return "text/html", clean_html(str(mistune.html(text)))


# -- SVG -----------------------------------------------------------------------
_SVG = "http://www.w3.org/2000/svg"
_XLINK = "http://www.w3.org/1999/xlink"
_SVG_ELEMENTS = frozenset(
    {
        "svg", "g", "defs", "desc", "title", "path", "rect", "circle", "ellipse", "line",
        "polyline", "polygon", "text", "tspan", "textPath", "use", "clipPath", "mask",
        "pattern", "linearGradient", "radialGradient", "stop", "symbol", "marker", "image",
        "style", "switch", "filter", "feBlend", "feColorMatrix", "feComponentTransfer",
        "feComposite", "feFlood", "feGaussianBlur", "feMerge", "feMergeNode", "feOffset",
        "feFuncR", "feFuncG", "feFuncB", "feFuncA", "feMorphology", "feTile",
    }
)  # fmt: skip


def _svg_reference_ok(tag: str, value: str) -> bool:
    value = value.strip()
    if value.startswith("#"):
        return True  # within the image
    return tag == "image" and bool(_DATA_IMAGE.match(value))


def _svg_attribute_ok(tag: str, name: str, value: str) -> bool:
    if name.lower().startswith("on"):
        return False  # event handlers
    if name == "href":
        return _svg_reference_ok(tag, value)
    # CSS and presentation attributes may point elsewhere only within the image
    # (fill="url(#gradient)"), never to another file.
    return not _CSS_ACTIVE.search(value.replace(" ", "").replace("url(#", ""))


def _clean_svg_element(element: ET.Element) -> None:
    for child in list(element):
        namespace, _, tag = child.tag.rpartition("}")
        if namespace.lstrip("{") != _SVG or tag not in _SVG_ELEMENTS:
            element.remove(child)
            continue
        for name in list(child.attrib):
            if not _svg_attribute_ok(tag, name.rpartition("}")[2], child.attrib[name]):
                del child.attrib[name]
        if tag == "style" and child.text:
            child.text = _clean_css(child.text)
        _clean_svg_element(child)


def clean_svg(svg: str) -> str | None:
    """The SVG's allowed elements and attributes; None when it is not an SVG image."""
    ET.register_namespace("", _SVG)
    ET.register_namespace("xlink", _XLINK)
    try:
        root = ET.fromstring(svg.encode())
    except ET.ParseError:
        return None
    if root.tag != f"{{{_SVG}}}svg":
        return None
    for name in list(root.attrib):
        if name.rpartition("}")[2].lower().startswith("on"):
            del root.attrib[name]
    _clean_svg_element(root)
    return ET.tostring(root, encoding="unicode")


# -- bundles -------------------------------------------------------------------
def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)  # nbformat may split strings into lines
    return None


# MIME type -> its cleaner: ``(type to show it as, cleaned value or None to withhold)``.
_CLEANERS: dict[str, Callable[[str], tuple[str, str | None]]] = {
    "text/latex": lambda text: ("text/latex", clean_latex(text)),
    "text/html": lambda text: ("text/html", clean_html(text)),
    "text/markdown": clean_markdown,
    "image/svg+xml": lambda text: ("image/svg+xml", clean_svg(text)),
}


def seal_bundle(
    data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """``(data, metadata, withheld types)`` of a MIME bundle under the policy."""
    sealed: dict[str, Any] = {}
    withheld: list[str] = []
    for mime, value in data.items():
        text = _text(value)
        cleaner = _CLEANERS.get(mime)
        if mime in PASSIVE_TYPES:
            sealed[mime] = value
            continue
        kind, cleaned = cleaner(text) if cleaner and text is not None else (mime, None)
        if cleaned is None:
            withheld.append(mime)
        elif kind == mime:
            sealed[mime] = cleaned
        else:
            sealed.setdefault(kind, cleaned)  # Markdown made HTML does not replace HTML
    kept = {k: v for k, v in (metadata or {}).items() if k in sealed or "/" not in k}
    if withheld:
        kept["nbseal"] = {**kept.get("nbseal", {}), "withheld": sorted(withheld)}
        if set(sealed) <= {"text/plain"}:
            # Only a repr is left: say why the output is missing, above it.
            note = WITHHELD_NOTE.format(types=", ".join(sorted(withheld)))
            plain = _text(sealed.get("text/plain"))
            sealed["text/plain"] = f"{note}\n{plain}" if plain else note
    return sealed, kept, withheld


def seal_output(output: Mapping[str, Any]) -> dict[str, Any]:
    """A stored output (nbformat: display_data, execute_result, ...) under the policy."""
    if "data" not in output or not isinstance(output["data"], Mapping):
        return dict(output)
    if any(str(mime).startswith("application/vnd.nbseal.") for mime in output["data"]):
        return dict(output)  # nbseal's own (progress, locks, describe): the proxy wrote it
    data, metadata, _ = seal_bundle(output["data"], output.get("metadata") or {})
    return {**output, "data": data, "metadata": metadata}


def seal_widget_state(module: str, model: str, state: Mapping[str, Any]) -> dict[str, Any] | None:
    """A widget model's state under the policy; None for a model that brings its own code."""
    if module not in WIDGET_MODULES or "_esm" in state:
        return None
    cleaned = dict(state)
    for field in _WIDGET_HTML_FIELDS.get(model, ()):
        value = cleaned.get(field)
        if isinstance(value, str):
            cleaned[field] = clean_html(value, note=False) or ""
    description = cleaned.get("description")
    if isinstance(description, str) and _RAW_HTML.search(description):
        # Rendered as HTML with description_allow_html.
        cleaned["description"] = clean_html(description, note=False) or ""
    outputs = cleaned.get("outputs")
    if isinstance(outputs, list):  # the Output widget's captured outputs
        cleaned["outputs"] = [seal_output(o) if isinstance(o, Mapping) else o for o in outputs]
    return cleaned
