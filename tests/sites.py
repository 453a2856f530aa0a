"""The local test website the crawl tests use: ``benchmarks/site.py``, re-exported.

The ingestion benchmark serves the same site, so it lives with the benchmarks (which may
not import tests); the tests keep importing it from here.
"""

from benchmarks.site import FANOUT, OFFSITE_HOST, Site, fact, page_depth, serve_site

__all__ = ["FANOUT", "OFFSITE_HOST", "Site", "fact", "page_depth", "serve_site"]
