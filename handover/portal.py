"""The demo portal's pages beyond the start page: a service page and its application form.

Static files from widget/portal/, each under a fixed path (no directory is
served, so nothing else there is reachable). The pages get the page
Content-Security-Policy from SecurityHeaders like every HTML response: their
script is a file of its own (`script-src 'self'`), never inline; their styles
are one shared file, also used by the start page (widget/demo.html).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response

from handover.settings import PROJECT_ROOT

PORTAL_DIR = PROJECT_ROOT / "widget" / "portal"
HTML = "text/html; charset=utf-8"

# Path → (file in PORTAL_DIR, media type).
PAGES = {
    "/portal/photovoltaik": ("photovoltaik.html", HTML),
    "/portal/photovoltaik/antrag": ("photovoltaik-antrag.html", HTML),
    "/portal/portal.css": ("portal.css", "text/css; charset=utf-8"),
    "/portal/pv-form.js": ("pv-form.js", "text/javascript; charset=utf-8"),
}


def _route(filename: str, media_type: str) -> Callable[[], Awaitable[Response]]:
    async def serve() -> Response:
        response = FileResponse(PORTAL_DIR / filename, media_type=media_type)
        if media_type != HTML:
            # Short, as for the widget: fixes reach browsers within minutes; ETags make it cheap.
            response.headers["Cache-Control"] = "public, max-age=300"
        return response

    return serve


def add_portal_pages(app: FastAPI) -> None:
    """Mount the portal's pages, styles and scripts on the gateway's app."""
    for path, (filename, media_type) in PAGES.items():
        app.add_api_route(
            path, _route(filename, media_type), methods=["GET"], include_in_schema=False
        )
