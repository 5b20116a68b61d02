pytest_plugins = ["tests.channel_fixtures", "tests.temporal_fixtures"]
