"""Two small in-page components (Streamlit components v2: inline HTML/CSS/JS, no build step).

* :func:`hover_preview` shows a trial's contact sheet beside the cursor while it hovers a
  point of a ``st.plotly_chart``. Plotly's own hover labels cannot hold images, so this
  listens to the chart's ``plotly_hover`` events (the graph div is found through the
  ``st-key-<key>`` class Streamlit gives keyed elements) and draws a floating picture.
  Clicks stay with Streamlit's native selection events. If the chart cannot be found
  the component does nothing and the chart works as usual.
* :func:`before_after` lays two same-sized images on top of each other and reveals the
  top one up to a draggable divider (a CSS ``clip-path``), the usual way to compare two
  stylisations of one photo.

Both receive their images as ``data:`` URLs in ``data``; nothing is fetched from the
network. The JavaScript only reads numbers and those URLs, and builds elements with
``textContent``/attributes rather than HTML strings, so no stored text is interpreted
as markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

_HOVER_JS = r"""
export default function (component) {
  const { data, parentElement } = component;
  const chartKey = data.chart_key;
  const images = data.images || {};
  let tip = document.getElementById("styletune-hover-tip");
  if (!tip) {
    tip = document.createElement("div");
    tip.id = "styletune-hover-tip";
    Object.assign(tip.style, {
      position: "fixed", zIndex: 100000, display: "none", pointerEvents: "none",
      background: "white", border: "1px solid #bbb", borderRadius: "6px", padding: "4px",
      boxShadow: "0 4px 16px rgba(0,0,0,.25)", font: "12px sans-serif", color: "#222",
    });
    const img = document.createElement("img");
    img.style.display = "block";
    img.style.maxWidth = (data.width || 320) + "px";
    const cap = document.createElement("div");
    cap.style.padding = "3px 2px 0";
    tip.appendChild(img);
    tip.appendChild(cap);
    document.body.appendChild(tip);
  }
  const img = tip.querySelector("img");
  const cap = tip.querySelector("div");
  const status = document.createElement("span");
  status.className = "hover-status";
  status.dataset.attached = "false";
  parentElement.appendChild(status);

  let cursor = { x: 0, y: 0 };
  function place() {
    // Beside the cursor, on whichever side has room; measured again once the image has loaded.
    const w = Math.max(tip.offsetWidth, 60), h = Math.max(tip.offsetHeight, 40);
    let x = cursor.x + 18;
    if (x + w > window.innerWidth - 8) x = cursor.x - w - 18;
    let y = cursor.y + 18;
    if (y + h > window.innerHeight - 8) y = cursor.y - h - 18;
    tip.style.left = Math.max(4, x) + "px";
    tip.style.top = Math.max(4, y) + "px";
  }
  img.onload = place;
  function show(ev) {
    const p = ev && ev.points && ev.points[0];
    if (!p || p.customdata === undefined) return;
    const n = Array.isArray(p.customdata) ? p.customdata[0] : p.customdata;
    const src = images[String(n)];
    if (!src) return;
    const m = ev.event || {};
    cursor = { x: m.clientX || 0, y: m.clientY || 0 };
    if (img.getAttribute("src") !== src) img.src = src;
    cap.textContent = "trial " + n + " — click to open";
    tip.style.display = "block";
    place();
  }
  function hide() { tip.style.display = "none"; }

  let gd = null;
  function attach() {
    const el = document.querySelector(".st-key-" + chartKey + " .js-plotly-plot");
    if (el && typeof el.on === "function" && el !== gd) {
      if (gd && gd.removeListener) {
        gd.removeListener("plotly_hover", show);
        gd.removeListener("plotly_unhover", hide);
      }
      gd = el;
      gd.on("plotly_hover", show);
      gd.on("plotly_unhover", hide);
      status.dataset.attached = "true";
    }
  }
  attach();
  const timer = setInterval(attach, 400);
  return () => {
    clearInterval(timer);
    hide();
    if (gd && gd.removeListener) {
      gd.removeListener("plotly_hover", show);
      gd.removeListener("plotly_unhover", hide);
    }
  };
}
"""

_BEFORE_AFTER_HTML = """
<div class="ba">
  <img class="below" alt="">
  <img class="above" alt="">
  <div class="divider"></div>
  <span class="label left"></span><span class="label right"></span>
  <input class="slider" type="range" min="0" max="100" value="50" step="0.5" aria-label="divider position">
</div>
"""

_BEFORE_AFTER_CSS = """
.ba { position: relative; display: inline-block; max-width: 100%; line-height: 0; user-select: none; }
.ba img { display: block; max-width: 100%; height: auto; image-rendering: auto; }
.ba img.above { position: absolute; inset: 0; width: 100%; height: 100%; clip-path: inset(0 50% 0 0); }
.ba .divider { position: absolute; top: 0; bottom: 0; left: 50%; width: 2px; background: white;
               box-shadow: 0 0 4px rgba(0,0,0,.6); pointer-events: none; }
.ba .label { position: absolute; top: 8px; padding: 2px 6px; border-radius: 3px; line-height: 1.4;
             font: 13px sans-serif; background: rgba(0,0,0,.55); color: white; pointer-events: none; }
.ba .label.left { left: 8px; } .ba .label.right { right: 8px; }
.ba .slider { position: absolute; inset: 0; width: 100%; height: 100%; margin: 0; opacity: 0; cursor: ew-resize; }
"""

_BEFORE_AFTER_JS = r"""
export default function (component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector(".ba");
  const above = root.querySelector("img.above"), below = root.querySelector("img.below");
  const divider = root.querySelector(".divider"), slider = root.querySelector(".slider");
  above.src = data.left;
  below.src = data.right;
  if (data.width) { above.style.width = below.style.width = data.width + "px"; root.style.width = data.width + "px"; }
  root.querySelector(".label.left").textContent = data.left_label || "";
  root.querySelector(".label.right").textContent = data.right_label || "";
  function place(v) {
    above.style.clipPath = "inset(0 " + (100 - v) + "% 0 0)";
    divider.style.left = "calc(" + v + "% - 1px)";
  }
  const onInput = () => place(parseFloat(slider.value));
  slider.addEventListener("input", onInput);
  place(parseFloat(slider.value));
  return () => slider.removeEventListener("input", onInput);
}
"""


@st.cache_resource
def _registered() -> dict[str, Any]:
    """Register each component once per server process (re-registering logs a warning)."""
    return {
        "hover": st.components.v2.component("styletune_hover_preview", js=_HOVER_JS, isolate_styles=False),
        "before_after": st.components.v2.component("styletune_before_after", html=_BEFORE_AFTER_HTML,
                                                   css=_BEFORE_AFTER_CSS, js=_BEFORE_AFTER_JS),
    }


def hover_preview(chart_key: str, images: Mapping[int, str], width: int = 320, key: str | None = None) -> None:
    """Show ``images[trial]`` (a data URL) beside the cursor while it hovers that trial's point."""
    _registered()["hover"](data={"chart_key": chart_key, "images": {str(k): v for k, v in images.items()},
                                 "width": width}, key=key or f"hover-{chart_key}", height=1)


def before_after(left: str, right: str, left_label: str, right_label: str, width: int | None = None,
                 key: str | None = None) -> None:
    """Two images (data URLs) stacked with a draggable divider: left of it ``left``, right of it ``right``."""
    _registered()["before_after"](data={"left": left, "right": right, "left_label": left_label,
                                        "right_label": right_label, "width": width}, key=key)
