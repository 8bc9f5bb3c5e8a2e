"""The redaction rule table: what counts as a secret or as personal data.

Each :class:`Rule` pairs a precompiled pattern with a cheap prefilter (substrings
that must occur, or a run of digits) and an optional check that looks at the
match in context (Luhn for cards, mod-97 for IBANs, "is this a template or a code
reference rather than a value" for assignments). The redacted span is the named
group ``v`` (or ``v2``/``v3`` for alternatives) when the pattern has one, else
the whole match: ``password=hunter2`` keeps its key and loses its value.

Order is priority: when spans of two rules overlap, the earlier rule wins, so a
specific rule (``github_token``) is listed before a generic one (``api_key``).
Several entries may share a name (``password`` has one per syntax).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from privacy.checksums import iban_is_valid, luhn_is_valid

__all__ = ["GATE_CHARS", "GATE_LITERALS", "RULES", "Kind", "Rule", "rule_names"]

Kind = Literal["SECRET", "PII"]
Span = tuple[int, int]
Check = Callable[["re.Match[str]", Span], "Span | None"]

_VALUE_GROUPS = ("v", "v2", "v3")

GATE_CHARS: frozenset[str] = frozenset("0123456789@=:_-!#$%&*+/")
GATE_LITERALS: tuple[str, ...] = (
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "AIza",
    "eyJ",
    # credentials passed to a call as string literals: HTTPBasicAuth('u', 'p')
    "uth",
    "ogin",
    "redential",
    "assword",
    "ignIn",
    "ign_in",
    "bind_s",
)
"""Every hit of every rule contains (or is introduced by) one of :data:`GATE_CHARS`
or one of :data:`GATE_LITERALS` (key formats that may be letters only, and the
names of calls that take credentials); text with none of them cannot hold a hit.
Keep it true when adding a rule."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One detector and its prefilter. The pattern runs only when all of these hold:
    one of ``literals`` occurs in the text or one of ``folded`` in its lower-cased
    form (skipped when both are empty); one of ``also`` occurs (skipped when
    empty); the text has a run of seven digits if ``digits``. ``check`` may refuse
    a match (None) or narrow its span."""

    name: str
    kind: Kind
    pattern: re.Pattern[str]
    literals: tuple[str, ...] = ()
    folded: tuple[str, ...] = ()
    also: tuple[str, ...] = ()
    digits: bool = False
    check: Check | None = None

    @property
    def placeholder(self) -> str:
        """The text that replaces a hit, e.g. ``<SECRET:aws_access_key>``."""
        return f"<{self.kind}:{self.name}>"

    def value_span(self, match: re.Match[str]) -> Span:
        """Return the span of the value group that matched (whole match if none)."""
        groups = match.re.groupindex
        for name in _VALUE_GROUPS:
            if name in groups and match.group(name) is not None:
                return match.span(name)
        return match.span()


# --- checks ---------------------------------------------------------------------

_NON_VALUES = frozenset(
    {
        "none",
        "null",
        "nil",
        "true",
        "false",
        "str",
        "string",
        "int",
        "bytes",
        "bool",
        "secretstr",
        "optional",
        "any",
        "undefined",
        "required",
        "unknown",
        "empty",
        "redacted",
        "hidden",
        "masked",
        "placeholder",
        "your_password",
        "yourpassword",
        "password",
        "secret",
        "token",
        "wrong",
        "incorrect",
        "invalid",
    }
)
_TEMPLATE = re.compile(r"^(?:\$|\{|%\(|%[A-Z_]+%|<|@Value)|\$\{|\{\{|\)s$")
_CODE_PATH = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")
_MASK_CHARS = frozenset("*x.•#X-_")


def _is_non_value(value: str) -> bool:
    """True for text that stands for a value rather than being one."""
    return (
        value.lower() in _NON_VALUES or bool(_TEMPLATE.search(value)) or set(value) <= _MASK_CHARS
    )


def _spaced_separator(match: re.Match[str], span: Span) -> bool:
    """Whether the assignment had spaces around '=' (code style, not env style)."""
    before = match.string[match.start() : span[0]]
    return " =" in before or "= " in before


_WORKING_DIR = re.compile(r"(?:OLD)?PWD\b")
_TEST_VERDICT = re.compile(r"pass[ \t]*:[ \t]*", re.IGNORECASE)


def _check_password(match: re.Match[str], span: Span) -> Span | None:
    value = match.string[span[0] : span[1]]
    quoted = match.group("v3") is None if "v3" in match.re.groupindex else False
    if len(value) < 3 or _is_non_value(value):
        return None
    if value[0] in "/~" and _WORKING_DIR.match(match.string, match.start()):
        return None  # PWD=/home/ann: the shell's working directory, not a password
    if _TEST_VERDICT.fullmatch(match.string, match.start(), span[0]) and (
        value.lower().startswith("test") or "/" in value or value.isdigit()
    ):
        return None  # "PASS: test_login", "Pass: 3/5": a test runner's verdict
    if not quoted:
        if "(" in value or "[" in value or _CODE_PATH.match(value):
            return None
        if _IDENTIFIER.match(value) and _spaced_separator(match, span):
            return None
    return span


def _check_code_password(match: re.Match[str], span: Span) -> Span | None:
    """A string literal passed as a password: not empty, a template or a mask,
    and (a login call's second argument being often a message) without spaces."""
    value = match.string[span[0] : span[1]]
    if len(value) < 3 or _is_non_value(value) or any(c.isspace() for c in value):
        return None
    return span


def _check_prose_password(match: re.Match[str], span: Span) -> Span | None:
    value = match.string[span[0] : span[1]]
    if GATE_CHARS.isdisjoint(value) or _is_non_value(value):
        return None  # "the password is wrong": a word, not a password
    return span


def _check_token(match: re.Match[str], span: Span) -> Span | None:
    value = match.string[span[0] : span[1]]
    if len(value) < 16 or "(" in value or _is_non_value(value):
        return None
    if not any(c.isdigit() for c in value) or not any(c.isalpha() for c in value):
        return None
    if _CODE_PATH.match(value) and not any(c.isdigit() for c in value):
        return None  # settings.api_key, os.environ.get: a reference, not a value
    return span


def _check_value(match: re.Match[str], span: Span) -> Span | None:
    value = match.string[span[0] : span[1]]
    return None if _is_non_value(value) else span


def _check_auth_header(match: re.Match[str], span: Span) -> Span | None:
    value = match.string[span[0] : span[1]]
    has_digit = any(c.isdigit() for c in value)
    return span if has_digit and any(c.isalpha() for c in value) else None


_FILE_EXTENSIONS = frozenset(
    {
        "png",
        "jpg",
        "jpeg",
        "gif",
        "svg",
        "webp",
        "ico",
        "bmp",
        "tif",
        "tiff",
        "pdf",
        "js",
        "ts",
        "css",
        "json",
        "py",
        "html",
        "txt",
        "md",
        "zip",
        "gz",
        "mp4",
        "mov",
    }
)


def _check_email(match: re.Match[str], span: Span) -> Span | None:
    value = match.string[span[0] : span[1]]
    local, _, domain = value.rpartition("@")
    if local.lower() == "git" or domain.rsplit(".", 1)[-1].lower() in _FILE_EXTENSIONS:
        return None
    if match.string[max(0, span[0] - 3) : span[0]] == "://":
        return None  # URL user info (https://user@host), not a mailbox
    return span


_CARD_BRANDS: tuple[tuple[tuple[str, ...], frozenset[int]], ...] = (
    (("4",), frozenset({13, 16, 19})),
    (("51", "52", "53", "54", "55", *(str(n) for n in range(2221, 2721))), frozenset({16})),
    (("34", "37"), frozenset({15})),
    (("6011", "65", *(str(n) for n in range(644, 650))), frozenset({16, 17, 18, 19})),
    (("35",), frozenset({16, 17, 18, 19})),
    (("300", "301", "302", "303", "304", "305", "36", "38", "39"), frozenset({14, 16, 19})),
    (("62",), frozenset({16, 17, 18, 19})),
)
_GROUPINGS = frozenset({(4, 6, 5), (4, 6, 4), (4, 5, 6)})
_CARD_CONTEXT = re.compile(
    r"(?:card|\bcc|credit|debit|\bpan\b|visa|master|maestro|amex|payment|pay\b|paid|"
    r"carte|karte|tarjeta|cartão|kart\b)",
    re.IGNORECASE,
)
_CARD_CONTEXT_CHARS = 40


def _check_card(match: re.Match[str], span: Span) -> Span | None:
    """A Luhn-valid number of 13-19 digits, written as cards are. Any issuer
    prefix counts (Maestro, Mir, RuPay, private-label and new ranges too) when the
    digits are grouped like a card (4-4-4-4..., 4-6-5, 4-6-4) or a card word
    stands before them; an ungrouped run without one must also have a known
    brand's prefix and length, so that order numbers, timestamps and ids that
    happen to pass Luhn (one in ten does) stay."""
    raw = match.string[span[0] : span[1]]
    separators = {c for c in raw if not c.isdigit()}
    if len(separators) > 1:
        return None
    groups = tuple(len(g) for g in re.split(r"[ \-]", raw))
    if (
        len(groups) > 1
        and groups not in _GROUPINGS
        and (any(g != 4 for g in groups[:-1]) or not 1 <= groups[-1] <= 4)
    ):
        return None
    digits = raw.replace(" ", "").replace("-", "")
    if not luhn_is_valid(digits) or len(set(digits)) == 1:
        return None  # 0000 0000 0000 0000 passes Luhn: a filler, not a card
    if len(groups) > 1 and len(digits) >= 13:
        return span
    before = match.string[max(0, span[0] - _CARD_CONTEXT_CHARS) : span[0]]
    if _CARD_CONTEXT.search(before):
        return span
    for prefixes, lengths in _CARD_BRANDS:
        if digits.startswith(prefixes) and len(digits) in lengths:
            return span
    return None


def _check_iban(match: re.Match[str], span: Span) -> Span | None:
    start, end = span
    text = match.string
    while end - start >= 15:
        if iban_is_valid(text[start:end]):
            return (start, end)
        cut = text.rfind(" ", start, end)
        if cut <= start:
            break
        end = cut  # a trailing group may be a word that merely followed the IBAN
    return None


def _follows_digit_group(text: str, start: int) -> bool:
    """Whether the number at ``start`` continues a sequence of short upper-case or
    digit groups ("FR76 3000 6000 0112 ..."): the tail of an IBAN or account number."""
    if start < 3 or text[start - 1] not in " .-":
        return False
    end = start - 1
    begin = end
    while begin > 0 and not text[begin - 1].isspace() and end - begin < 7:
        begin -= 1
    token = text[begin:end]
    return (
        2 <= len(token) <= 6
        and (begin == 0 or text[begin - 1].isspace())
        and all(c.isdigit() or "A" <= c <= "Z" for c in token)
    )


def _check_phone(match: re.Match[str], span: Span) -> Span | None:
    raw = match.string[span[0] : span[1]]
    digits = sum(c.isdigit() for c in raw)
    if raw.startswith("+"):
        return span if 8 <= digits <= 15 else None
    if _follows_digit_group(match.string, span[0]):
        return None
    if re.fullmatch(r"\d{4}[-/.]\d{2}[-/.]\d{2}|\d{2}[-/.]\d{2}[-/.]\d{4}", raw):
        return None  # a date
    return span if 7 <= digits <= 15 else None


# --- patterns -------------------------------------------------------------------

_ASSIGN = r"[\"'\]]{0,2}[ \t]*(?::=|=(?!=)|:(?!:))[ \t]*"
_VALUE = (
    r"(?:\"(?P<v>[^\"\n]{1,200})\"|'(?P<v2>[^'\n]{1,200})'"
    r"|(?P<v3>[^\s\"',;&<>(){}\[\]]{1,200}))"
)
_PW_KEY = (
    r"(?<![A-Za-z0-9])(?:[A-Za-z0-9]*(?:password|passwd|passphrase)|pass|pwd|pw)"
    r"(?![A-Za-z0-9_])"
)
_API_KEY = (
    r"(?<![A-Za-z0-9])(?:api[_-]?key|apikey|api[_-]?secret|api[_-]?token|access[_-]?token"
    r"|auth[_-]?token|refresh[_-]?token|secret[_-]?key|client[_-]?secret"
    r"|private[_-]?token|token|secret)(?![A-Za-z0-9_])"
)
_I = re.IGNORECASE
_ENV_PW_KEY = (  # SSHPASS=, DBPASS=, MYSQL_ROOT_PASSWORD=; not BYPASS, COMPASS, PASS_MAX_DAYS
    r"(?<![A-Za-z0-9_])(?:[A-Z][A-Z0-9]*_)*(?:[A-Z0-9]*(?:PASSWORD|PASSWD|PASSPHRASE)"
    r"|(?:SSH|DB|REDIS|MYSQL|ADMIN|ROOT|SMTP|MAIL|FTP|LDAP|SUDO|USER|APP|API|PG|MONGO|RABBIT"
    r"|AMQP|VAULT|KEYSTORE|STORE|KEY|BIND|PROXY|WIFI)?(?:PASS|PWD))(?![A-Za-z0-9_])"
)
_FLAG_VALUE = r"(?:\"(?P<v>[^\"\n]{1,200})\"|'(?P<v2>[^'\n]{1,200})'|(?P<v3>[^\s\"']{1,200}))"
_AUTH_CALL = (
    r"(?:\b(?:auth|basic_?auth|http_?basic_?auth|http_?digest_?auth|digest_?auth|ntlm_?auth"
    r"|BasicAuth|HTTPBasicAuth|HTTPDigestAuth|HttpNtlmAuth|DigestAuth|NetworkCredential"
    r"|PasswordAuthentication|UsernamePasswordCredentials|UsernamePasswordAuthenticationToken"
    r"|PasswordCredential|Credentials\.basic|basicAuth|setBasicAuth|set_basic_auth|credentials"
    r"|login|Login|sign_?in|signIn|authenticate|simple_bind_s|bind_s|basic)"
    r"[ \t]*(?:=[ \t]*)?[(\[][ \t]*)"
    r"(?:\"[^\"\n]{1,100}\"|'[^'\n]{1,100}')[ \t]*,[ \t]*"
    r"(?:\"(?P<v>[^\"\n]{1,200})\"|'(?P<v2>[^'\n]{1,200})')"
)


def _rule(
    name: str,
    kind: Kind,
    pattern: str,
    flags: int = 0,
    *,
    literals: tuple[str, ...] = (),
    folded: tuple[str, ...] = (),
    also: tuple[str, ...] = (),
    digits: bool = False,
    check: Check | None = None,
) -> Rule:
    return Rule(name, kind, re.compile(pattern, flags), literals, folded, also, digits, check)


RULES: tuple[Rule, ...] = (
    _rule(
        "private_key",
        "SECRET",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,-]*)",
        re.DOTALL,
        literals=("PRIVATE KEY",),
    ),
    _rule(
        "auth_header",
        "SECRET",
        r"\b(?:bearer|basic)[ \t]+(?P<v>[A-Za-z0-9\-._~+/]{16,}=*)(?![A-Za-z0-9\-._~+/=])",
        _I,
        folded=("bearer", "basic"),
        check=_check_auth_header,
    ),
    _rule(
        "jwt",
        "SECRET",
        r"(?<![A-Za-z0-9_-])ey[A-Za-z0-9_-]{8,}\.ey[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}",
        literals=("eyJ",),
    ),
    _rule(
        "aws_access_key",
        "SECRET",
        r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])",
        literals=("AKIA", "ASIA", "ABIA", "ACCA"),
    ),
    _rule(
        "aws_secret_key",
        "SECRET",
        r"(?:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?[ \t]*[:= \t][ \t]*"
        r"[\"']?(?P<v>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])",
        _I,
        folded=("secret",),
    ),
    _rule(
        "github_token",
        "SECRET",
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"
        r"(?![A-Za-z0-9_])",
        literals=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    _rule(
        "slack_token",
        "SECRET",
        r"(?<![A-Za-z0-9-])(?:xox[abposr]-(?:\d+-)+[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
        r"|xapp-\d-[A-Z0-9]+-\d+-[A-Za-z0-9]+)",
        literals=("xox", "xapp-"),
    ),
    _rule(
        "slack_webhook",
        "SECRET",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,}",
        literals=("hooks.slack.com",),
    ),
    _rule(
        "google_api_key",
        "SECRET",
        r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])",
        literals=("AIza",),
    ),
    _rule(
        "stripe_key",
        "SECRET",
        r"(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}(?![0-9A-Za-z])",
        literals=("_live_", "_test_"),
    ),
    _rule(
        "connection_string",
        "SECRET",
        r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.\-_]{1,30}://[^\s:/?#@'\"]*:"
        r"(?P<v>[^\s@/'\"]+)@[A-Za-z0-9.\-_\[\]]+",
        literals=("://",),
        also=("@",),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        _PW_KEY + _ASSIGN + _VALUE,
        _I,
        folded=("pass", "pwd", "pw"),
        also=("=", ":"),
        check=_check_password,
    ),
    _rule(
        "password",
        "SECRET",
        r"(?<![A-Za-z0-9-])--(?:[A-Za-z0-9]+-)*(?:password|passwd|passphrase|pass)"
        r"(?:=|[ \t]+)"
        r"(?:\"(?P<v>[^\"\n]+)\"|'(?P<v2>[^'\n]+)'|(?P<v3>[^\s\"'-][^\s\"']*))",
        _I,
        folded=("--",),
        also=("pass", "PASS", "Pass"),
        check=_check_password,
    ),
    _rule(
        "password",
        "SECRET",
        _ENV_PW_KEY + _ASSIGN + _VALUE,
        literals=("PASS", "PWD"),
        also=("=", ":"),
        check=_check_password,
    ),
    _rule(
        "password",
        "SECRET",
        r"\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mysqlpump|mariadb"
        r"|mariadb-dump|mariadb-admin|7z|7za|7zz)\b[^\n|;&]*?[ \t]-p" + _FLAG_VALUE,
        folded=("mysql", "mariadb", "7z"),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        r"\b(?:mongo|mongosh|mongodump|mongorestore|mongoexport|mongoimport|mongostat|mongotop"
        r"|(?:docker|podman|buildah|skopeo|nerdctl|oras|helm[ \t]+registry|az)[ \t]+login)\b"
        r"[^\n|;&]*?[ \t]-p(?:=|[ \t]+)" + _FLAG_VALUE,
        folded=("mongo", "login"),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        r"\b(?:sqlcmd|bcp|osql|isql|zip|unzip|zipcloak)\b[^\n|;&]*?[ \t]-P[ \t]*" + _FLAG_VALUE,
        folded=("sqlcmd", "bcp", "osql", "isql", "zip"),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        r"\b(?:redis-cli|keydb-cli)\b[^\n|;&]*?[ \t]-a[ \t]+" + _FLAG_VALUE,
        folded=("redis-cli", "keydb-cli"),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        r"\bldap(?:search|modify|add|delete|whoami|passwd|compare|modrdn)\b[^\n|;&]*?"
        r"[ \t]-w[ \t]+" + _FLAG_VALUE,
        folded=("ldap",),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        r"\b(?:smbclient|rpcclient|smbmap|smbcacls|net)\b[^\n|;&]*?[ \t](?:-U|--user(?:=|[ \t]))"
        r"[ \t]*['\"]?[^\s%'\"]+%['\"]?(?P<v>[^\s'\"]+)",
        folded=("smb", "rpcclient", "net"),
        also=("%",),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        r"(?<![\w-])-(?:pass(?:in|out)?|passwd)[ \t]+['\"]?pass:(?P<v>[^\s'\"]+)",
        folded=("pass:",),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        r"(?<![\w-])-(?:src|dest|new)?(?:store|key)?pass[ \t]+" + _FLAG_VALUE,
        folded=("storepass", "keypass"),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        _AUTH_CALL,
        check=_check_code_password,
        folded=("auth", "login", "credential", "basic", "sign", "bind_s"),
    ),
    _rule(
        "password",
        "SECRET",
        r"\b(?:set_?password|setPassword|with_?password|withPassword|setPass|set_pass)"
        r"[ \t]*\([ \t]*(?:\"(?P<v>[^\"\n]{1,200})\"|'(?P<v2>[^'\n]{1,200})')[ \t]*\)",
        _I,
        folded=("pass",),
        check=_check_code_password,
    ),
    _rule(
        "password",
        "SECRET",
        r"\bsshpass[ \t]+-p[ \t]*['\"]?(?P<v>[^\s'\"]+)",
        folded=("sshpass",),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        r"\bcurl\b[^\n|;&]*?[ \t](?:-u|--user)[ \t]*['\"]?[^\s:'\"]+:(?P<v>[^\s'\"]+)",
        folded=("curl",),
        check=_check_value,
    ),
    _rule(
        "password",
        "SECRET",
        r"\b(?:password|passcode|passphrase)[ \t]+(?:is|was)[ \t]+['\"]?(?P<v>[^\s'\"]+?)"
        r"['\"]?(?=[.,;!?]?(?:\s|$))",
        _I,
        folded=("pass",),
        check=_check_prose_password,
    ),
    _rule(
        "api_key",
        "SECRET",
        _API_KEY + _ASSIGN + _VALUE,
        _I,
        folded=("key", "token", "secret"),
        also=("=", ":"),
        check=_check_token,
    ),
    _rule(
        "api_key",
        "SECRET",
        r"(?<![A-Za-z0-9-])--(?:[a-z0-9]+-)*(?:api-key|token|secret|access-token|auth-token)"
        r"(?:=|[ \t]+)(?P<v>[^\s\"'-][^\s\"']*)",
        _I,
        folded=("--",),
        check=_check_token,
    ),
    _rule(
        "email",
        "PII",
        r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@"
        r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,24}"
        r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])",
        literals=("@",),
        check=_check_email,
    ),
    _rule(
        "card_number",
        "PII",
        r"(?<![\d\-.])\d(?:[ \-]?\d){12,18}(?!\d|[\-.]\d)",
        digits=True,
        check=_check_card,
    ),
    _rule(
        "iban",
        "PII",
        r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
        r"(?![A-Za-z0-9])",
        digits=True,
        check=_check_iban,
    ),
    _rule(
        "phone",
        "PII",
        r"(?<![\w+])\+[1-9]\d{0,3}(?:[ .\-]?\(?\d{1,5}\)?){1,6}(?!\w)",
        literals=("+",),
        digits=True,
        check=_check_phone,
    ),
    _rule(
        "phone",
        "PII",
        r"(?<![\w+.\-/#$])(?:\([2-9]\d{2}\)[ ]?|[2-9]\d{2}[.\- ])[2-9]\d{2}[.\- ]\d{4}"
        r"(?!\d|[.\-/]\d)",
        digits=True,
        check=_check_phone,
    ),
    _rule(
        "phone",
        "PII",
        r"(?<![\w+.\-/#$€£])0[1-9]\d{0,4}(?:[ \-/]\d{2,8}){1,4}(?!\w|[.\-/]\d)",
        digits=True,
        check=_check_phone,
    ),
    _rule(
        "phone",
        "PII",
        r"\b(?:tel|phone|mobile|mob|cell|call|fax|whatsapp)\b\.?:?[ \t]{0,3}"
        r"(?:me[ \t]+(?:at|on)[ \t]+)?(?P<v>\+?\d[\d ().\-]{5,18}\d)(?!\d)",
        _I,
        folded=("tel", "phone", "mob", "cell", "call", "fax", "whatsapp"),
        digits=True,
        check=_check_phone,
    ),
)


def rule_names() -> tuple[str, ...]:
    """Return the distinct rule names, in priority order."""
    return tuple(dict.fromkeys(rule.name for rule in RULES))
