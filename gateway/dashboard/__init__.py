"""The operators' dashboard under /dashboard: journeys, one journey, one contact, team plans and
data hygiene, as server-rendered pages behind a password (`auth`), rendered by `render` from what
`routes` reads."""
