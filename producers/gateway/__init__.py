"""The HTTP collector (`python -m candor.gateway_cli gateway`): device-token
auth, batches of events to `capture.events`, frames to the frame store."""
