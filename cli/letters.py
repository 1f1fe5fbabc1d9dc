"""`letters render`: a letter of a case's policy, as the customer would read it, for posting.

A customer with no email address gets their letters by post: the policy drafts each for the owner, who posts
it and records that with `contact_customer --channel letter --letter NAME`. This prints the letter from the
case as it stands (the same input the engine's email would use: workflows/case/letters.py, letter_input),
its subject first; --html prints the HTML version instead.
"""

from __future__ import annotations

import argparse

from cli.common import EXIT_OK, CliError, Session, check_complaint_id, with_database
from delivery.letters import LetterTemplateError, letter_variables, render_letter


def add_letters_parser(commands: argparse._SubParsersAction, parser_class: type) -> None:
    letters = commands.add_parser(
        "letters",
        help="the customer letters of a case's policy: print one for posting",
        description=(
            "Letters the policy sends (docs/lifecycle.md, 'Letters'). A customer without an email address gets "
            "them by post: print the letter, post it, then record it with "
            "`action CASE contact_customer --channel letter --letter NAME`."
        ),
    )
    sub = letters.add_subparsers(dest="letters_command", metavar="<render>", required=True, parser_class=parser_class)
    render = sub.add_parser("render", help="print a letter of the case as it reads now: its subject, then its text")
    render.set_defaults(command="letters_render")
    render.add_argument("complaint_id", metavar="COMPLAINT_ID")
    render.add_argument("letter", metavar="LETTER", help="the policy's name for it: final_response, summary_resolution, ...")
    render.add_argument("--words", help="the owner's own words, as contact_customer's summary would put them in")
    render.add_argument("--html", action="store_true", help="print the HTML version instead of the plain text")


async def cmd_letters_render(args: argparse.Namespace, session: Session) -> int:
    from activities.policies import load_policies
    from activities.roster_store import get_agent
    from schemas.state import Letter
    from workflows.case.letters import letter_input

    check_complaint_id(args.complaint_id)
    policies = load_policies(session.settings.policies_path)
    client = await session.connect()
    state = await session.call(client.state(args.complaint_id), args.complaint_id)
    policy = policies.resolve(state.policy, state.severity)
    terms = policy.letters.get(args.letter)
    if terms is None:
        known = ", ".join(sorted(policy.letters)) or "none"
        raise CliError(f"policy {state.policy!r} of case {args.complaint_id} has no letter {args.letter!r} (its letters: {known})")
    letter = state.letter(args.letter) or Letter(name=args.letter, template=terms.template, status="drafted")
    letter = letter.model_copy(update={"message": args.words})
    owner = None
    if state.owner is not None:
        owner = await with_database(session.settings, session.timeout, lambda pool: get_agent(pool, state.owner))
    send = letter_input(state, policy, letter, owner.name if owner is not None else None, to=state.customer.email or "")
    try:
        rendered = render_letter(send.template, letter_variables(send))
    except LetterTemplateError as error:
        raise CliError(str(error)) from None
    print(f"Subject: {rendered.subject}\n")
    print(rendered.html if args.html else rendered.text, end="")
    return EXIT_OK
