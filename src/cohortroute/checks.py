"""The checks on names and short texts before they enter the data model: versions, tenants,
tags, a rollout's salt and a halt reason. Each returns the value (normalised) or raises
:class:`~cohortroute.errors.ValidationError` saying what to give instead."""

from __future__ import annotations

import re

from .errors import ValidationError, quoted
from .tenancy import is_valid_label

_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z")
_TAG = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")


def check_version_name(version: str) -> str:
    """Return ``version`` if it is a valid version name, else raise ValidationError."""
    if not isinstance(version, str) or _VERSION.match(version) is None:
        raise ValidationError(
            f"invalid version name {quoted(version, 80)}: use 1-64 of letters, digits and . _ + - "
            "(for example '2026.12')"
        )
    return version


def check_tenant_name(tenant: str) -> str:
    """Return the tenant name lower-cased if it is one DNS label, else raise ValidationError.

    ASCII only, checked before lower-casing: ``'\u212a'`` (KELVIN SIGN) lower-cases to ``'k'``.
    """
    if not isinstance(tenant, str) or not tenant.isascii() or not is_valid_label(tenant.lower()):
        raise ValidationError(
            f"invalid tenant {quoted(tenant, 80)}: a tenant is one DNS label (1-63 of ASCII a-z, "
            "0-9 and '-', not starting or ending with '-'; an xn-- label must be valid IDNA), as "
            f"in acme.example.com -> 'acme'{_ascii_form(tenant)}"
        )
    return tenant.lower()


def _ascii_form(tenant: object) -> str:
    """``; browsers send 'xn--mlaut-jva' for it`` for a name in another script, when it has one."""
    if not isinstance(tenant, str) or tenant.isascii() or "." in tenant:
        return ""
    try:
        label = tenant.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return ""
    return f"; browsers send {label!r} for it" if is_valid_label(label) else ""


def check_tag_name(tag: str) -> str:
    """Return the tag lower-cased if valid (1-63 of a-z 0-9 . _ -), else raise ValidationError."""
    if not isinstance(tag, str) or _TAG.match(tag.lower()) is None:
        raise ValidationError(
            f"invalid tag {quoted(tag, 80)}: use 1-63 of a-z, 0-9 and . _ - (for example 'beta')"
        )
    return tag.lower()


MAX_HALT_REASON = 500
"""The longest halt reason: it is stored in the policy every router reads, and printed by
``status``."""


def check_halt_reason(reason: str | None) -> str | None:
    """Return ``reason`` (blank: None) if it is one printable line of at most
    :data:`MAX_HALT_REASON` characters, else raise ValidationError."""
    if reason is None or not reason.strip():
        return None
    if not reason.isprintable():
        raise ValidationError(
            f"the halt reason {quoted(reason, 60)} has control characters (a newline, a tab, an "
            "escape): give it on one line"
        )
    if len(reason) > MAX_HALT_REASON:
        raise ValidationError(
            f"the halt reason is {len(reason)} characters long: give at most {MAX_HALT_REASON} "
            "(the audit log can hold the rest)"
        )
    return reason


MAX_SALT = 200
"""The longest rollout salt: a Unleash groupId or a word of your own, hashed on every decision."""


def check_salt(salt: str) -> str:
    """Return ``salt`` if it is one printable line of at most :data:`MAX_SALT` characters, else
    raise ValidationError (a long salt is hashed on every decision and printed whole; a control
    character in it drives the terminal of whoever reads ``status``)."""
    if not isinstance(salt, str) or not salt.isprintable():
        raise ValidationError(
            f"salt {quoted(salt, 60)} has control characters (a newline, a tab, an escape): give "
            "the salt on one line, like my-toggle"
        )
    if len(salt) > MAX_SALT:
        raise ValidationError(
            f"the salt is {len(salt)} characters long: give a salt of at most {MAX_SALT}"
        )
    return salt
