"""The admin's login page behind the login lockout (accounts/lockout.py)."""

import math

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from accounts.lockout import locked_for


@sensitive_post_parameters("password")
@never_cache
def admin_login(request: HttpRequest) -> HttpResponse:
    """``admin.site.login``, but a locked attempt gets a 429 page with ``Retry-After``."""
    response = admin.site.login(request)
    seconds = locked_for(request)
    if not seconds:
        return response
    locked = TemplateResponse(
        request,
        "admin/login_locked.html",
        {
            **admin.site.each_context(request),
            "title": "Too many failed logins",
            "minutes": math.ceil(seconds / 60),
            "login_url": reverse("admin:login"),
        },
        status=429,
    )
    locked["Retry-After"] = str(seconds)
    return locked
