"""journeys package."""
