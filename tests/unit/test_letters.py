"""The letters' templates (delivery/letters.py, delivery/templates/letters/): each renders in plain text and in
HTML, the FCA letters carry the Financial Ombudsman Service referral rights the rules require, and a letter's
version changes with its wording."""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from activities.policies import load_policies
from delivery.letters import (
    TEMPLATES_DIR,
    LetterTemplateError,
    email_message,
    letter_variables,
    render_letter,
    template_names,
    template_version,
)
from schemas.letters import SendLetter
from tests.support.paths import REPO

SENT_ON = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
LETTER = SendLetter(
    complaint_id="C-77",
    letter="final_response",
    template="fca_final_response",
    occurrence=1,
    to="dana@example.com",
    customer_name="Dana Whitfield",
    summary="Charged twice for order A-1001",
    received_at=datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc),
    time_zone="Europe/London",
    owner_name="Ana Agent",
    message="We found the second charge: our card system took the payment twice.\n\nWe are sorry & have fixed it <now>.",
    resolution="A refund of 49.00 to your card within five working days.",
    resolution_due=datetime(2027, 1, 18, 9, 30, tzinfo=timezone.utc),
    next_update_by=datetime(2026, 12, 15, 9, 0, tzinfo=timezone.utc),
)
VARIABLES = letter_variables(LETTER, SENT_ON)

# What each FCA letter must tell the customer about the Financial Ombudsman Service, in any wording:
# the service by name, its website and address, and (but for the letter at eight weeks, whose six months
# run from the final response to come) the six months from the date of this letter.
FOS_BASICS = ("Financial Ombudsman Service", "www.financial-ombudsman.org.uk", "Exchange Tower, London E14 9SR", "0800 023 4567")
FOS_RIGHTS = {
    # DISP 1.6.2R(1)(e)-(f) and DISP 1 Annex 3R: the right to refer, free, within six months of this letter,
    # and what follows from missing the limit.
    "fca_final_response": (
        "You have the right to ask the Financial Ombudsman Service",
        "costs you nothing",
        "within six months of the date of this letter (1 December 2026)",
        "only in very limited circumstances",
        "exceptional circumstances",
        "explanatory leaflet",
    ),
    # DISP 1.5.4R(2)-(5): may be able to refer if later dissatisfied; the time limit; website; more information.
    "fca_summary_resolution": (
        "we now consider your complaint resolved",
        "you may be able to ask the Financial Ombudsman Service",
        "free of charge",
        "within six months of the date of this letter (1 December 2026)",
        "only in very limited circumstances",
        "More information about the Ombudsman",
    ),
    # DISP 1.6.2R(2): why no final response yet and when; may refer now; leaflet and website.
    "fca_holding_response": (
        "we cannot yet give you our final response",
        "by 15 December 2026",
        "you may now refer it to the Financial",
        "six months from the date of that response",
        "explanatory leaflet",
    ),
}


def flat(text: str) -> str:
    """The text with its line breaks and tags folded into single spaces, for phrase checks."""
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


@pytest.mark.parametrize("template", template_names())
def test_every_letter_renders_in_text_and_html_with_a_subject(template):
    rendered = render_letter(template, VARIABLES)
    assert "C-77" in rendered.subject and "\n" not in rendered.subject
    for body in (rendered.text, rendered.html):
        assert "Dana Whitfield" in body and "C-77" in body and "23 November 2026" in body
    assert rendered.html.lstrip().startswith("<!doctype html>") and rendered.html.rstrip().endswith("</html>")
    assert "<" not in rendered.text.replace("<now>", ""), "the plain text is not HTML"
    assert re.fullmatch(r"[0-9a-f]{12}", rendered.version)


def test_the_letters_the_policies_name_are_the_ones_there_are():
    book = load_policies(REPO / "policies" / "policies.toml")
    named = {
        terms.template
        for name in book.names
        for terms in book.resolve(name, "medium").letters.values()
    }
    assert named == set(template_names())


@pytest.mark.parametrize("template", sorted(FOS_RIGHTS))
def test_each_fca_letter_carries_the_ombudsman_referral_rights_in_text_and_html(template):
    rendered = render_letter(template, VARIABLES)
    for body in (rendered.text, rendered.html):
        text = flat(body)
        missing = [phrase for phrase in (*FOS_BASICS, *FOS_RIGHTS[template]) if phrase not in text]
        assert not missing, f"{template}: the referral rights lost {missing}"


@pytest.mark.parametrize("template", ["acknowledgement", "progress_update", "cfpb_initial_response", "cfpb_final_response"])
def test_the_other_letters_do_not_send_the_customer_to_the_uk_ombudsman(template):
    assert "Ombudsman" not in render_letter(template, VARIABLES).text


def test_removing_the_referral_rights_fails_the_render_check(tmp_path):
    """The check above is real: a copy of the templates whose final response lost its Ombudsman part fails it."""
    copy = tmp_path / "letters"
    shutil.copytree(TEMPLATES_DIR, copy)
    path = copy / "fca_final_response.txt.j2"
    path.write_text(path.read_text().replace("{{ fos.after_final_response(letter_date) }}", ""))
    text = flat(render_letter("fca_final_response", VARIABLES, copy).text)
    assert "within six months of the date of this letter" not in text
    assert template_version("fca_final_response", copy) != template_version("fca_final_response")


def test_the_owner_s_words_are_in_the_letter_and_escaped_in_html():
    rendered = render_letter("fca_final_response", VARIABLES)
    assert "We are sorry & have fixed it <now>." in rendered.text
    assert "We are sorry &amp; have fixed it &lt;now&gt;." in rendered.html
    assert "A refund of 49.00" in rendered.text and "A refund of 49.00" in rendered.html
    assert all(len(line) <= 80 for line in rendered.text.splitlines())


def test_a_version_follows_the_wording_of_the_letter_and_of_its_parts(tmp_path):
    copy = tmp_path / "letters"
    shutil.copytree(TEMPLATES_DIR, copy)
    before = {name: template_version(name, copy) for name in template_names(copy)}
    assert before == {name: template_version(name) for name in template_names()}
    (copy / "_fos.txt.j2").write_text((copy / "_fos.txt.j2").read_text() + "\n")
    after = {name: template_version(name, copy) for name in template_names(copy)}
    assert all(after[name] != before[name] for name in before), "a changed part is a new version of every letter"


def test_an_unknown_template_says_which_there_are():
    with pytest.raises(LetterTemplateError, match="no letter template 'fca_finale'.*the letters are acknowledgement, "):
        render_letter("fca_finale", VARIABLES)


def test_the_email_is_text_with_an_html_alternative_under_the_given_message_id():
    rendered = render_letter("acknowledgement", VARIABLES)
    message = email_message(LETTER, rendered, "<letter-C-77.abc@example.com>")
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["Message-ID"] == "<letter-C-77.abc@example.com>" and parsed["To"] == "dana@example.com"
    assert parsed["Subject"] == rendered.subject
    assert " ".join(str(parsed["X-Complaint-Letter"]).split()) == f"final_response; template=acknowledgement; version={rendered.version}"
    assert parsed.get_body(("plain",)).get_content().strip() == rendered.text.strip()
    assert "<!doctype html>" in parsed.get_body(("html",)).get_content()


def test_letter_dates_are_written_in_the_case_s_calendar_zone():
    late = LETTER.model_copy(update={"received_at": datetime(2026, 11, 23, 23, 30, tzinfo=timezone.utc), "time_zone": "Asia/Tokyo"})
    assert letter_variables(late, SENT_ON)["received_on"] == "24 November 2026"
    assert Path(TEMPLATES_DIR).is_dir()
