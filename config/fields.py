"""Model fields shared by the apps."""

from django import forms
from django.db import models

from config import crypto


class EncryptedTextField(models.TextField):
    """A text secret stored as Fernet ciphertext; Python code sees the plaintext.

    The ciphertext is randomised, so the column cannot be searched or compared
    in SQL. Forms render it as an empty password box: a stored secret is never
    sent back to a browser.
    """

    description = "Text encrypted at rest"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)

    def formfield(self, **kwargs):
        # Always, even over the admin's textarea override for TextField.
        kwargs["widget"] = forms.PasswordInput(render_value=False)
        kwargs["form_class"] = forms.CharField
        return super().formfield(**kwargs)

    def value_to_string(self, obj):
        # Serialisation (dumpdata) must not leak plaintext either.
        return ""
