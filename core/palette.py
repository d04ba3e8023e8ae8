"""The colours every figure shares, owned here once: the dashboard (``ui/graph.py``, the plots)
and the HTML report (:mod:`core.report_svg`) import them, so one domain or relation reads in
the same colour everywhere.

- :data:`DOMAIN_COLOURS`: one colour per domain, by domain index modulo its length
  (colour-blind friendly, Okabe-Ito);
- :data:`UNIVERSAL_COLOUR`: the universal classes (a neutral dark grey);
- :data:`METHOD_COLOURS`: one colour per selection method in the report's sweep plots;
- :data:`RELATION_COLOURS`: domain-to-domain relationship edges by relation type
  (core.evidence.RELATIONS); drawn dashed, so they never read as a mapping edge (solid, in the
  colour of its domain).
"""

from __future__ import annotations

__all__ = ["DOMAIN_COLOURS", "UNIVERSAL_COLOUR", "RELATION_COLOURS", "METHOD_COLOURS"]

DOMAIN_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
UNIVERSAL_COLOUR = "#3d3d5c"
RELATION_COLOURS = {"equivalent": "#9467bd", "narrower": "#e31a1c", "broader": "#b07a3b", "overlap": "#8c8c8c"}
METHOD_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#999999"]
