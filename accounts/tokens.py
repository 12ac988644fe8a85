"""API tokens: ``POST /api/auth/token/`` issues one, ``POST /api/auth/logout/`` deletes it.

Tokens are django-rest-knox's: only a SHA-512 digest is stored (and the first
15 characters, to find the row), each expires ``API_TOKEN_TTL_HOURS`` after it
is issued, and clients send ``Authorization: Token <token>`` as before
(api.md). Logging in goes through ``authenticate()`` and so through the login
lockout (accounts/lockout.py): a locked attempt is a 429 with ``Retry-After``.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in, user_logged_out
from drf_spectacular.utils import extend_schema
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.lockout import locked_for

INVALID_LOGIN = "Unable to log in with provided credentials."


class LoginSerializer(serializers.Serializer):
    # Django's username limit; a password long enough for any passphrase but not
    # for making the server hash megabytes.
    username = serializers.CharField(max_length=150, write_only=True)
    password = serializers.CharField(
        max_length=4096, trim_whitespace=False, write_only=True, style={"input_type": "password"}
    )

    def validate(self, attrs: dict) -> dict:
        user = authenticate(
            request=self.context["request"],
            username=attrs["username"],
            password=attrs["password"],
        )
        if user is None:
            raise serializers.ValidationError(INVALID_LOGIN, code="authorization")
        return {"user": user}


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    expiry = serializers.DateTimeField(help_text="After this the token is refused (401).")


class Locked(exceptions.Throttled):
    default_detail = "Too many failed logins."


class TokenLogin(APIView):
    """A new API token for a username and password."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    # The errors (400, and 429 for a locked login) are added by config.schema.
    @extend_schema(request=LoginSerializer, responses={200: TokenSerializer})
    def post(self, request: Request) -> Response:
        login = LoginSerializer(data=request.data, context={"request": request})
        valid = login.is_valid()
        # Checked before the errors: a locked attempt is refused whatever the password.
        seconds = locked_for(request)
        if seconds:
            raise Locked(wait=seconds)
        if not valid:
            raise exceptions.ValidationError(login.errors)
        user = login.validated_data["user"]
        instance, token = AuthToken.objects.create(
            user=user, expiry=timedelta(hours=settings.API_TOKEN_TTL_HOURS)
        )
        # Records last_login, as a session login would.
        user_logged_in.send(sender=type(user), request=request, user=user)
        return Response(TokenSerializer({"token": token, "expiry": instance.expiry}).data)


class TokenLogout(APIView):
    """Deletes the token this request was made with; the client must log in again."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        if not isinstance(request.auth, AuthToken):
            raise exceptions.NotAuthenticated("log out with the token to delete")
        request.auth.delete()
        user_logged_out.send(sender=type(request.user), request=request, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
