"""The desktop capture agent for X11: keyboard, pointer and window focus,
published through `producers.client.CaptureClient`.

`python -m candor.agent_cli --device ... --subject ... --org ...` runs it.
Pure core: `keys` (typing into chunks), `recorder` (input to payloads),
`privacy` (pause, excluded apps, secure fields). Shell: `x11` (pynput and
python-xlib), `agent` (the loop), `__main__` (the command).
"""
