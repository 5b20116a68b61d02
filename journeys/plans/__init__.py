"""Team plans (seed 003): repeatable work written once as tasks with owner roles and due dates
counted back from a target date, run for real target dates and people."""
