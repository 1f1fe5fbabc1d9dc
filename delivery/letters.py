"""Letters to the customer, rendered from delivery/templates/letters/ (Jinja2): a plain text and an HTML email.

Pure: a SendLetter in, a RenderedLetter (subject, text, HTML, version) and its EmailMessage out.

Each letter is two templates, `<template>.txt.j2` and `<template>.html.j2`. Files whose names start with `_`
are parts the letters import (the Financial Ombudsman Service's referral rights and contact details). A
letter's version is the first 12 hex digits of the SHA-256 of its two templates and every part, so any change
of wording is a new version; the timeline records the version of each letter sent.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape

from schemas.letters import SendLetter

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates" / "letters"
PARTS = ("txt", "html")


class LetterTemplateError(LookupError):
    """No such letter template, or one that does not render; the message says which and why."""


@dataclass(frozen=True)
class RenderedLetter:
    template: str
    version: str
    subject: str
    text: str
    html: str


@lru_cache(maxsize=4)
def _environment(directory: Path) -> Environment:
    environment = Environment(
        loader=FileSystemLoader(directory),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["paragraphs"] = _wrapped
    return environment


def _wrapped(paragraphs: list[str], indent: int = 0) -> str:
    """Paragraphs for plain text: wrapped at 76 columns, indented, a blank line between two."""
    prefix = " " * indent
    return "\n\n".join(
        textwrap.fill(paragraph, width=76, initial_indent=prefix, subsequent_indent=prefix, break_on_hyphens=False)
        for paragraph in paragraphs
    )


def template_names(directory: Path = TEMPLATES_DIR) -> list[str]:
    """The letters that have both a text and an HTML template, sorted."""
    found = {path.name.removesuffix(".txt.j2") for path in directory.glob("*.txt.j2") if not path.name.startswith("_")}
    return sorted(name for name in found if (directory / f"{name}.html.j2").is_file())


def template_version(template: str, directory: Path = TEMPLATES_DIR) -> str:
    """The letter's version: a digest of its two templates and of every part they may import."""
    files = [directory / f"{template}.{part}.j2" for part in PARTS]
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise LetterTemplateError(
            f"no letter template {template!r} ({', '.join(missing)} missing in {directory}); "
            f"the letters are {', '.join(template_names(directory)) or 'none'}"
        )
    digest = hashlib.sha256()
    for path in [*files, *sorted(directory.glob("_*.j2"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _day(moment: datetime | None, zone: ZoneInfo) -> str | None:
    """A date as a letter writes it: 7 December 2026, in the calendar's time zone."""
    if moment is None:
        return None
    local = moment.astimezone(zone)
    return f"{local.day} {local:%B %Y}"


def _paragraphs(text: str | None) -> list[str]:
    """The owner's words as paragraphs (a blank line between two)."""
    if not text:
        return []
    return [" ".join(part.split()) for part in re.split(r"\n\s*\n", text.strip()) if part.strip()]


def letter_variables(letter: SendLetter, now: datetime | None = None) -> dict[str, Any]:
    """What the templates may use. Dates are written out in the case's calendar zone; the letter is dated today."""
    zone = ZoneInfo(letter.time_zone)
    return {
        "complaint_id": letter.complaint_id,
        "customer_name": letter.customer_name,
        "summary": letter.summary,
        "received_on": _day(letter.received_at, zone),
        "letter_date": _day(now or datetime.now(timezone.utc), zone),
        "signed_by": letter.owner_name or "The complaints team",
        "handled_by": letter.owner_name or "our complaints team",
        "message": _paragraphs(letter.message),
        "resolution": _paragraphs(letter.resolution),
        "resolution_due": _day(letter.resolution_due, zone),
        "next_update_by": _day(letter.next_update_by, zone),
        "promised_by": _day(letter.promised_by, zone),
    }


def render_letter(template: str, variables: dict[str, Any], directory: Path = TEMPLATES_DIR) -> RenderedLetter:
    """The letter's subject (set in its text template), text and HTML; LetterTemplateError if it cannot be."""
    version = template_version(template, directory)
    environment = _environment(directory)
    try:
        text_module = environment.get_template(f"{template}.txt.j2").make_module(variables)
        subject = " ".join(str(getattr(text_module, "subject", "")).split())
        if not subject:
            raise LetterTemplateError(f"letter template {template}.txt.j2 sets no subject ({{% set subject = ... %}})")
        html = environment.get_template(f"{template}.html.j2").render({**variables, "subject": subject})
    except TemplateNotFound as error:
        raise LetterTemplateError(f"letter template {template}: a part it imports is missing: {error.name}") from None
    except LetterTemplateError:
        raise
    except Exception as error:  # an undefined variable, a syntax error: the template's fault, never worth a retry
        raise LetterTemplateError(f"letter template {template} does not render: {type(error).__name__}: {error}") from None
    return RenderedLetter(template=template, version=version, subject=subject, text=str(text_module), html=html)


def email_message(letter: SendLetter, rendered: RenderedLetter, message_id: str) -> EmailMessage:
    """The email of a rendered letter: plain text with an HTML alternative, its Message-ID fixed by the caller."""
    message = EmailMessage()
    message["To"] = letter.to
    message["Subject"] = rendered.subject
    message["Message-ID"] = message_id
    message["X-Complaint-Id"] = letter.complaint_id
    message["X-Complaint-Letter"] = f"{letter.letter}; template={rendered.template}; version={rendered.version}"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def letter_key(complaint_id: str, letter: str, occurrence: int) -> str:
    """What names a letter's Message-ID: the same case, letter and occurrence is the same message."""
    return f"letter/{complaint_id}/{letter}/{occurrence}"
