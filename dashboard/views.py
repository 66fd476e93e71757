"""The page at ``/``: a template that loads our ES modules; the page itself logs in through the API."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


def content_security_policy(request: HttpRequest) -> str:
    """Only our own files run and only our own server is reached: the API over HTTP, /ws over ws(s)."""
    host = request.get_host()
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        # Preact and the charts set element styles through the DOM (allowed); no inline <style> is used.
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src 'self' ws://{host} wss://{host}",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])  # fmt: skip


@require_GET
def dashboard_page(request: HttpRequest) -> HttpResponse:
    response = render(request, "dashboard/index.html")
    response["Content-Security-Policy"] = content_security_policy(request)
    # The tokens live in sessionStorage: no page of ours should leak its URL to another site.
    response["Referrer-Policy"] = "same-origin"
    return response
