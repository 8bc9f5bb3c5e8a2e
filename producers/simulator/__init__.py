"""The simulated workforce: people, devices and their capture events, published
through the SDK (`candor simulate`, the demo, tests and benchmarks)."""
