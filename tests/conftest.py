pytest_plugins = [
    "tests.channel_fixtures",
    "tests.temporal_fixtures",
    "tests.push_fixtures",
    "tests.api_fixtures",
    "tests.gateway_fixtures",
]
