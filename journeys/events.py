"""The event kinds the system itself produces, for `journeys validate` to tell a misspelt
`wait_for` event from a real one.

Backend services may send any other kind through the API or `journeys event` (`purchase`,
`app_installed`, `contact_added`, ...); a journey that waits for one declares it under `events:`.
Add a kind here when code starts producing it.
"""

from __future__ import annotations

BUILT_IN_EVENTS = frozenset(
    {
        "opened",  # gateway/tracking.py: the open pixel of a tracked message was fetched
        "clicked",  # gateway/tracking.py: a tracked link was followed
        "survey_viewed",  # gateway/nps.py: the NPS survey page was viewed
        "nps_answered",  # gateway/nps.py: the NPS survey was answered
        "unsubscribed",  # gateway/unsubscribe.py (the link) and twilio_hooks.py (an SMS STOP)
        "sms_reply",  # gateway/twilio_hooks.py: the contact sent us any other SMS
        "delivered",  # gateway/twilio_hooks.py: Twilio's delivery report for an SMS
        "undelivered",  # gateway/twilio_hooks.py: likewise
        "failed",  # workflows/journey.py: a send refused for good; also a Twilio delivery report
        "visited_url",  # gateway/website.py: the site script reported a page visit
        "onsite_shown",  # gateway/website.py: an on-site message was shown
    }
)
