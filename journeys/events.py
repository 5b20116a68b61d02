"""The event kinds the system itself produces, for `journeys validate` to tell a misspelt
`wait_for` event from a real one.

Backend services may send any other kind through the API or `journeys event` (`purchase`,
`app_installed`, `contact_added`, ...); a journey that waits for one declares it under `events:`.
Code that produces one of these names it by its constant here.
"""

from __future__ import annotations

OPENED = "opened"  # gateway/tracking.py: the open pixel of a tracked message was fetched
CLICKED = "clicked"  # gateway/tracking.py: a tracked link was followed
SURVEY_VIEWED = "survey_viewed"  # gateway/nps.py: the NPS survey page was viewed
NPS_ANSWERED = "nps_answered"  # gateway/nps.py: the NPS survey was answered
# gateway/unsubscribe.py (the link) and gateway/twilio_hooks.py (an SMS STOP)
UNSUBSCRIBED = "unsubscribed"
SMS_REPLY = "sms_reply"  # gateway/twilio_hooks.py: the contact sent us any other SMS
# gateway/twilio_hooks.py: Twilio's delivery reports for an SMS, under Twilio's own names
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
# workflows/journey.py: a send refused for good; also Twilio's report of an SMS that failed
FAILED = "failed"
# workflows/journey.py: a send over the frequency cap, skipped as its step says (when_capped)
SKIPPED = "skipped"
VISITED_URL = "visited_url"  # gateway/website.py: the site script reported a page visit
ONSITE_SHOWN = "onsite_shown"  # gateway/website.py: an on-site message was shown
# journeys/hygiene: the contact was merged into another; every run of theirs ends on it
CONTACT_MERGED = "contact_merged"
# journeys/leads: the contact's lead grade changed (data: from, to, score)
GRADE_CHANGED = "grade_changed"

BUILT_IN_EVENTS = frozenset(
    {
        OPENED,
        CLICKED,
        SURVEY_VIEWED,
        NPS_ANSWERED,
        UNSUBSCRIBED,
        SMS_REPLY,
        DELIVERED,
        UNDELIVERED,
        FAILED,
        SKIPPED,
        VISITED_URL,
        ONSITE_SHOWN,
        CONTACT_MERGED,
        GRADE_CHANGED,
    }
)
