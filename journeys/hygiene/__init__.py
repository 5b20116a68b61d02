"""Data hygiene (seed 002: "a program running quietly in the background"): phones to E.164,
emails checked, duplicates merged without losing anything or widening consent, contacts with
no engagement for long sunset. Pure rules and models here; the store applies them
(`journeys/store/hygiene.py`), the hygiene workflow runs them in batches on a schedule."""
