"""The NPS survey page behind the survey link of NPS messages (`links.nps` in templates).

Viewing it reports `survey_viewed` to the run that sent the link; answering stores the score
against that send (answering again updates it) and reports `nps_answered` with the score.
"""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Header
from fastapi.responses import HTMLResponse

from gateway.deps import Gateway, gateway
from gateway.pages import TokenRoute, page
from gateway.responses import documented
from gateway.tracking import report_fetch, report_message_event
from journeys import events
from journeys.tokens import NPS, MessageClaims, verify

router = APIRouter(route_class=TokenRoute, responses=documented(400))

QUESTION = "How likely are you to recommend us to a friend or colleague?"
COMMENT_MAX = 2000
_SCORES = {str(n): n for n in range(11)}


def _survey(error: str | None = None, comment: str = "", status_code: int = 200) -> HTMLResponse:
    choices = "".join(
        f'<label><input type="radio" name="score" value="{n}" required>{n}</label>'
        for n in range(11)
    )
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return page(
        "How did we do?",
        f'{alert}<form method="post">'
        '<fieldset aria-describedby="ends">'
        f"<legend>{QUESTION}</legend>"
        f'<div class="scale">{choices}</div>'
        '<p class="ends" id="ends"><span>0: not at all likely</span>'
        "<span>10: extremely likely</span></p></fieldset>"
        '<label for="comment">What is the main reason for your score? (optional)</label>'
        f'<textarea id="comment" name="comment" maxlength="{COMMENT_MAX}">'
        f"{escape(comment)}</textarea>"
        '<button type="submit">Send</button></form>',
        status_code=status_code,
    )


@router.get("/nps/{token}", summary="NPS survey page", response_class=HTMLResponse)
async def survey(
    token: str,
    user_agent: Annotated[str, Header()] = "",
    gw: Gateway = Depends(gateway),
) -> HTMLResponse:
    claims = verify(gw.settings, NPS, token, MessageClaims)
    # Link scanners fetch the survey link too; a journey waiting for a visit ignores them.
    await report_fetch(gw, claims, events.SURVEY_VIEWED, user_agent, channel=claims.channel)
    return _survey()


@router.post(
    "/nps/{token}",
    summary="Answer the NPS survey",
    response_class=HTMLResponse,
    responses=documented(404, 413),
)
async def answer(
    token: str,
    score: Annotated[str | None, Form()] = None,
    comment: Annotated[str | None, Form()] = None,
    gw: Gateway = Depends(gateway),
) -> HTMLResponse:
    claims = await gw.contact_claims(NPS, token, MessageClaims)
    comment = (comment or "").strip()
    # Checked here rather than by the form model, so a person gets the form back, not JSON.
    value = _SCORES.get(score or "")
    if value is None:
        return _survey("Choose a score from 0 to 10.", comment, status_code=422)
    if len(comment) > COMMENT_MAX:
        return _survey(f"Keep the comment under {COMMENT_MAX} characters.", comment, 422)
    try:
        await gw.store.record_nps_answer(claims.key, value, comment or None)
    except KeyError:
        # The send behind the link is not in the ledger (it never went out).
        return page("This survey is closed", "<p>Nothing was recorded.</p>", status_code=404)
    await report_message_event(gw, claims, events.NPS_ANSWERED, {"score": value})
    return page("Thank you", "<p>Your answer was recorded. You can close this page.</p>")
