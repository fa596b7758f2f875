"""Figures and the HTML report (issue 6, in progress): matplotlib figures written atomically as PNG."""
