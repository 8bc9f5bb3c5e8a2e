"""Server-rendered SVG charts: one bar per value, heights to scale, text escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from candor.portal.charts import bar_chart, hbar_chart

NS = "{http://www.w3.org/2000/svg}"


def bars(svg: str) -> dict[str, float]:
    root = ET.fromstring(svg)
    return {r.attrib["data-label"]: float(r.attrib["height"]) for r in root.iter(f"{NS}rect")}


def test_bar_heights_are_to_scale_and_every_value_is_in_the_description() -> None:
    svg = bar_chart("Events per day", [("11-27", 50), ("11-28", 100), ("11-29", 25)])
    heights = bars(svg)
    assert heights["11-28"] == 2 * heights["11-27"] == 4 * heights["11-29"]
    root = ET.fromstring(svg)
    assert root.attrib["role"] == "img"
    assert root.find(f"{NS}title") is not None
    desc = root.find(f"{NS}desc")
    assert desc is not None and desc.text == "11-27: 50; 11-28: 100; 11-29: 25"


def test_horizontal_bars_carry_their_values_and_unit() -> None:
    svg = hbar_chart("Time per app", [("code", 30.0), ("browser", 15.0)], " min")
    root = ET.fromstring(svg)
    widths = {r.attrib["data-label"]: float(r.attrib["width"]) for r in root.iter(f"{NS}rect")}
    assert widths["code"] == 2 * widths["browser"]
    assert "30 min" in svg and "15 min" in svg


def test_labels_are_escaped() -> None:
    svg = hbar_chart("<b>t</b>", [("<script>alert(1)</script>", 1.0)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    ET.fromstring(svg)  # still well-formed


def test_an_empty_chart_says_so() -> None:
    for svg in (bar_chart("x", []), hbar_chart("x", [])):
        assert "no data" in svg and not re.search(r"<rect", svg)
