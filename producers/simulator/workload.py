"""What simulated people work with: apps, code, commands and chat lines.

Pure data plus a few seeded generators. Some commands, chat lines and window
titles carry fake secrets (AWS access key ids, passwords, bearer tokens) and
e-mail addresses so the stream's redaction is exercised; every secret is
made up from the simulator's RNG and matches no real credential.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class App:
    """An application a simulated person switches between."""

    kind: str  # "ide" | "terminal" | "browser" | "chat"
    app_name: str


APPS: tuple[App, ...] = (
    App("ide", "code"),
    App("terminal", "gnome-terminal"),
    App("browser", "firefox"),
    App("chat", "slack"),
)

# How a person picks the next app, by the kind they are in now.
APP_WEIGHTS: dict[str, tuple[float, float, float, float]] = {
    "ide": (0.0, 0.45, 0.35, 0.2),
    "terminal": (0.6, 0.0, 0.25, 0.15),
    "browser": (0.5, 0.2, 0.0, 0.3),
    "chat": (0.5, 0.2, 0.3, 0.0),
}

FIRST_NAMES = ("alice", "bob", "chen", "dana", "emeka", "farah", "goran", "hana", "ivan", "jun")

SOURCE_FILES = ("main.py", "consent.py", "router.py", "README.md", "schema.sql", "app.ts")
LANGUAGES = {".py": "python", ".md": "markdown", ".sql": "sql", ".ts": "typescript"}

CODE_LINES = (
    "def handle(event):",
    "    return route(event, now)",
    "for row in rows:",
    "    total += row.count",
    "if not consent.allows(scope):",
    "    raise PermissionError(scope)",
    "SELECT subject_id, count() FROM events GROUP BY subject_id",
    "const session = await open(device);",
    "# TODO: move this into the reducer",
    "assert result == expected",
)

URL_HOSTS = (
    "github.com",
    "docs.python.org",
    "kafka.apache.org",
    "mail.example.com",
    "jira.example.com",
)

CHAT_LINES = (
    "pushed the fix, can you review?",
    "standup in 5",
    "lunch?",
    "the build is green again",
    "can you send it to {email}?",
    "call me on +1 555 0100 {digits}",
    "the staging password is {password}, rotate it after",
    "looks good to me",
)

COMMANDS = (
    "git status",
    "git diff --stat",
    "pytest -q tests/unit",
    "ls -la",
    "make build",
    "docker ps",
    "kubectl get pods -n candor",
    "git commit -m 'fix sessionizer gap' --author 'Dev <{email}>'",
    "export AWS_ACCESS_KEY_ID={aws_key}",
    "export PGPASSWORD={password}",
    "psql postgres://app:{password}@db.internal:5432/candor",
    "curl -H 'Authorization: Bearer {token}' https://api.example.com/v1/me",
    "ssh deploy@10.0.4.17",
)


def fake_secrets(rng: random.Random, name: str) -> dict[str, str]:
    """Values for the `{...}` fields of commands and chat lines."""
    upper = string.ascii_uppercase + string.digits
    alnum = string.ascii_letters + string.digits
    return {
        "email": f"{name}@example.com",
        "aws_key": "AKIA" + "".join(rng.choices(upper, k=16)),
        "password": "".join(rng.choices(alnum, k=14)),
        "token": "".join(rng.choices(alnum, k=32)),
        "digits": "".join(rng.choices(string.digits, k=4)),
    }


def fill(template: str, rng: random.Random, name: str) -> str:
    """`template` with its fields replaced by fresh fake values."""
    return template.format(**fake_secrets(rng, name))


def window_title(app: App, rng: random.Random, name: str, source_file: str, host: str) -> str:
    """A plausible window title (a mail tab names the person's address)."""
    if app.kind == "ide":
        return f"{source_file} - candor - Visual Studio Code"
    if app.kind == "terminal":
        return f"{name}@laptop: ~/src/candor"
    if app.kind == "chat":
        return f"#{rng.choice(('team', 'random', 'incidents'))} - Slack"
    if host.startswith("mail."):
        return f"Inbox (3) - {name}@example.com - Mail"
    return f"{host} - Mozilla Firefox"


def chunk_text(text: str, rng: random.Random) -> list[str]:
    """`text` split into the 1-6 character chunks a keyboard hook reports."""
    chunks: list[str] = []
    at = 0
    while at < len(text):
        size = rng.randint(1, 6)
        chunks.append(text[at : at + size])
        at += size
    return chunks
