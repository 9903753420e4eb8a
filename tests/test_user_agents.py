"""User-agent patterns: our defaults and the OPAWG user-agents-v2 files, applied by PostgreSQL
exactly as the OPAWG algorithm says (bots, apps, libraries, browsers; first match wins)."""

import json

import psycopg

from assets.ingestion.user_agents import read_patterns, store_patterns, to_postgres_regex
from pipelines.settings import REPO_ROOT
from simulator.logs import APPS, BOTS, WATCH
from tests.conftest import SHARED, query

OPAWG = SHARED / "realdata" / "user_agents"
FIRST_MATCH = """
    select e.ua, m.pattern_set, m.name
    from unnest(%s::text[]) as e(ua)
    left join lateral (
        select p.pattern_set, p.name from raw.user_agent_patterns p
        where p.pattern_set in ('bots', 'apps', 'libraries', 'browsers') and e.ua ~ p.pattern
        order by array_position(array['bots', 'apps', 'libraries', 'browsers'], p.pattern_set), p.ordinal
        limit 1) m on true
"""


def test_javascript_word_boundaries_become_postgres_ones():
    assert to_postgres_regex(r"[Bb]ot\b") == r"[Bb]ot\y"
    assert to_postgres_regex(r"\Bx\\b") == r"\Yx\\b"


def test_every_opawg_example_matches_its_own_entry_in_postgres(fresh_db):
    rows = read_patterns(OPAWG)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        counts = store_patterns(conn, rows, "test")
    assert counts["quarantined"] == 0 and counts["apps"] > 400 and counts["bots"] > 200
    expected = {}
    for name in ("bots", "apps", "libraries", "browsers"):
        path = next(OPAWG.glob(f"*__{name}.json"))
        for entry in json.loads(path.read_text())["entries"]:
            for example in entry.get("examples", []):
                expected.setdefault(example, (name, entry["name"]))
    assert len(expected) > 500
    got = {ua: (s, n) for ua, s, n in query(fresh_db, FIRST_MATCH, (list(expected),))}
    wrong = {ua: (got[ua], want) for ua, want in expected.items() if got[ua] != want}
    assert not wrong, list(wrong.items())[:5]


def test_default_patterns_classify_the_simulated_agents(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        store_patterns(conn, read_patterns(REPO_ROOT / "resources" / "user_agents"), "test")
    got = {ua: s for ua, s, _ in query(fresh_db, FIRST_MATCH, (list(APPS + BOTS + (WATCH,)),))}
    assert all(got[ua] in ("apps", "browsers") for ua in APPS)
    assert all(got[ua] == "bots" for ua in BOTS)
