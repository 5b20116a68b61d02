"""Journey reports: what each journey did, as the dashboard shows it and `journeys report`
prints it (one source of truth). `models` is the shape, `stats` the significance and NPS sums,
`build` turns the store's counts into a report, `drawing` the journey's graph as SVG."""
