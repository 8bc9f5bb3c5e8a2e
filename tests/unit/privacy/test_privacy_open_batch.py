"""`open_batch` reads the sealed text with orjson: on anything `seal_batch` can
seal it must give back exactly what was sealed, and read that text as json
does (the text's layout is fixed: it sits sealed in capture.clean)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy.keystore import DataKey
from privacy.shredding import (
    UndecryptableField,
    _load_entries,
    cipher_for,
    open_batch,
    seal_batch,
)
from tests.unit.privacy.privacy_events import make_event

KEY = DataKey("k-open", bytes(range(32)))
AAD = b"candor.batch.v1|s|d|0|9|b"
# Every code point UTF-8 can carry (surrogates cannot be sealed), and the
# characters JSON escapes or might: quotes, backslashes, controls, U+2028.
CONTENT = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from('"\\\x00\x1f\x7f\u2028')),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(CONTENT, CONTENT, CONTENT), min_size=1, max_size=6), CONTENT)
def test_open_batch_gives_back_what_seal_batch_sealed(
    contents: list[tuple[str, str, str]], event_id: str
) -> None:
    events: list[dict[str, Any]] = []
    for index, (text, title, host) in enumerate(contents):
        event = make_event("KeyInput", seq=index, event_id=f"{event_id}-{index}")
        event["payload"]["text"] = text
        event["app"]["window_title"], event["app"]["url_host"] = title, host
        events.append(event)
    sealed, content = seal_batch(events, KEY, AAD)
    assert content is not None
    plain = cipher_for(KEY.key).decrypt(content[:12], content[12:], AAD)
    assert repr(_load_entries(plain)) == repr(json.loads(plain))
    opened = copy.deepcopy(sealed)
    open_batch(opened, content, KEY.key, AAD)
    assert opened == events


def test_what_orjson_refuses_json_still_reads() -> None:
    assert repr(_load_entries(b'[[0,"e","payload.text","\\ud800"]]')) == repr(
        [[0, "e", "payload.text", "\ud800"]]
    )
    assert str(_load_entries(b"[NaN]")) == "[nan]"


def _sealed(entries: list[Any]) -> bytes:
    nonce = bytes(12)
    plain = json.dumps(entries, ensure_ascii=False).encode()
    return nonce + cipher_for(KEY.key).encrypt(nonce, plain, AAD)


def test_paths_seal_batch_never_writes_open_as_before() -> None:
    # `open_batch` looks the paths seal_batch writes up; any other "app.<f>" or
    # "payload.<f>" is still put in place, and anything else refused.
    events = [make_event("KeyInput", seq=0, event_id="e0")]
    open_batch(events, _sealed([[0, "e0", "payload.other", "x"]]), KEY.key, AAD)
    open_batch(events, _sealed([[0, "e0", "app", "y"]]), KEY.key, AAD)
    assert events[0]["payload"]["other"] == "x" and events[0]["app"][""] == "y"
    for path in ("frame.ref", "apps.x", 7, None):
        with pytest.raises(UndecryptableField):
            open_batch(events, _sealed([[0, "e0", path, "x"]]), KEY.key, AAD)
