"""Lead grades and scores (seeds 000 and 002): a fit grade A-D from rules on a contact's
attributes, an engagement score from their events with weights and a decay half-life, both read
from the library's grading file. Pure rules here; the store keeps each contact's grade
(`lead_grades`) and records a `grade_changed` event when it changes."""
