"""GET /verifier: the browser verifier page, the same self-contained file customers can open
from disk (build/verifier/index.html, built by `make verifier-page`; docs/customer.md).

The page checks bundles in the browser against a pinned trust document, so serving it needs
no state: it is a static file with a strict content-security policy and no caching surprises.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse, Response

from vbill import paths

PAGE = paths.BUILD / "verifier" / "index.html"

router = APIRouter()


@router.get("/verifier", include_in_schema=False)
@router.get("/verifier/", include_in_schema=False)
def verifier_page() -> Response:
    """The page, or 404 naming the build step when it has not been built."""
    if not PAGE.exists():
        return JSONResponse(
            {"detail": "the verifier page is not built: run `make verifier-page`"},
            status_code=404,
        )
    return HTMLResponse(
        PAGE.read_text(encoding="utf-8"),
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
