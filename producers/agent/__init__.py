"""The desktop capture agent for X11: keyboard, pointer and window focus,
published through `producers.sdk.client.CaptureClient`.

`python -m candor.agent_cli --device ... --subject ... --org ...` runs it.
Pure core: `keyboard` (typing into chunks), `recorder` (input to payloads),
`privacy` (pause, excluded apps, secure fields). Shell: `x11` (pynput and
python-xlib), `agent` (the loop); the command is `candor.agent_cli`.
"""
