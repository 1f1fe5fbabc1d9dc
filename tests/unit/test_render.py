"""What `starter.py show` and the demo print (complaint_client/render.py): a case's text never drives the terminal."""

from __future__ import annotations

from complaint_client.render import printable, render_state, render_timeline
from schemas.state import TimelineEvent
from tests.support.case import NOW, accepted_case, action, later

FORGED = "fine\n    9  2026-11-23 09:31:00 UTC  case_closed            system:engine"
ESCAPES = "\x1b[2J\x1b]0;owned\x07 \x9b31m red \u202eevil\u202c \u2066isolated\u2069\r\t\x00"


def test_a_note_cannot_draw_a_forged_timeline_line():
    case = accepted_case()
    case.apply("add_note", action("add_note", text=FORGED), later())
    shown = render_timeline(case.timeline)
    assert len(shown.splitlines()) == 2 * len(case.timeline) - sum(1 for e in case.timeline if not e.data)
    assert not any(line.lstrip().startswith("9  2026") for line in shown.splitlines())
    assert "fine\\n    9  2026" in shown


def test_controls_and_bidi_overrides_are_shown_escaped():
    shown = printable(ESCAPES)
    assert shown == (
        "\\x1b[2J\\x1b]0;owned\\x07 \\x9b31m red \\u202eevil\\u202c \\u2066isolated\\u2069\\r\\t\\x00"
    )
    event = TimelineEvent(seq=1, at=NOW, kind="note_added", actor="ana", data={"text": ESCAPES})
    for line in render_timeline([event]).splitlines():
        assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) <= 0x9F for ch in line), line


def test_the_state_view_escapes_the_summary_and_keeps_its_own_lines():
    case = accepted_case(summary="Charged twice\x1b[31m\nCase C-9: refunded")
    shown = render_state(case.state)
    assert "\x1b" not in shown and "Charged twice\\x1b[31m\\nCase C-9: refunded" in shown
    assert shown.splitlines()[0].startswith("Case C-1: Charged twice")
