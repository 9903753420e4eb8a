"""User-agent patterns: our defaults and the OPAWG user-agents-v2 files, applied by PostgreSQL
exactly as the OPAWG algorithm says (bots, apps, libraries, browsers; first match wins), the
stored OPAWG copy the loader prefers, and the warning when the built-in list is in use."""

import json
import re
import shutil
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from assets.ingestion.user_agents import (
    BUILT_IN_DIR, SOURCE_CHECK, PatternUpdateError, pattern_source, read_patterns, store_patterns, stored_version,
    to_postgres_regex, update_patterns, user_agent_patterns,
)
from resources.settings import Settings, get_settings
from resources.warehouse import WarehouseResource
from simulator.logs import APPS, BOTS, SHARED_AGENTS, WATCH
from tests.conftest import OPAWG_PATTERNS, query
from tests.dbt_cli import run_dbt

OPAWG = OPAWG_PATTERNS
ENTITY_SETS = ("bots", "apps", "libraries", "browsers")
TYPE_OF_SET = {"bots": "bot", "apps": "app", "libraries": "library", "browsers": "browser"}
FIRST_MATCH = """
    select e.ua, m.pattern_set, m.name
    from unnest(%s::text[]) as e(ua)
    left join lateral (
        select p.pattern_set, p.name from raw.user_agent_patterns p
        where p.pattern_set in ('bots', 'apps', 'libraries', 'browsers') and e.ua ~ p.pattern
        order by array_position(array['bots', 'apps', 'libraries', 'browsers'], p.pattern_set), p.ordinal
        limit 1) m on true
"""
# Phones of the CUBOT brand: their agents name the model, and "CUBOT " ends in `bot` + a word
# boundary, the self-declared-bot text rule's shape. Chrome, Android libraries and podcast apps.
CUBOT_AGENTS = (
    "Mozilla/5.0 (Linux; Android 11; CUBOT KINGKONG 5 Pro Build/RP1A.200720.011; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/110.0.5481.153 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/95.0.4638.74 "
    "Mobile Safari/537.36",
    "Dalvik/2.1.0 (Linux; U; Android 9; CUBOT P30 Build/PPR1.180610.011)",
    "stagefright/1.2 (Linux;Android 9; CUBOT P30)",
    "AntennaPod/3.2.0 (Linux; Android 12; CUBOT KINGKONG 7)",
    "ExoPlayerLib/2.18.1 (Linux; Android 10; CUBOT X30)",
)


def opawg_entries(name: str) -> list[dict]:
    return json.loads(next(OPAWG.glob(f"*__{name}.json")).read_text())["entries"]


class Opawg:
    """OPAWG's matching algorithm as its README states it, with Python's `re` on the published
    (JavaScript-flavoured) patterns: newlines removed; bots, apps, libraries, browsers in that
    order, the first entry in file order whose pattern matches; the device (first entry of
    devices.json) only when the type is not bot."""

    def __init__(self):
        self.sets = {name: [(e["name"], re.compile(e["pattern"]), e.get("category")) for e in opawg_entries(name)]
                     for name in (*ENTITY_SETS, "devices")}

    def match(self, agent: str) -> tuple[str | None, str | None, str | None, str | None]:
        agent = agent.replace("\r", "").replace("\n", "")
        kind = entity = None
        for name in ENTITY_SETS:
            entity = next((n for n, pattern, _ in self.sets[name] if pattern.search(agent)), None)
            if entity is not None:
                kind = name
                break
        device = category = None
        if kind != "bots":
            device, category = next(((n, c) for n, pattern, c in self.sets["devices"] if pattern.search(agent)),
                                    (None, None))
        return kind, entity, device, category


def iab_watch(agent: str) -> bool:
    """IAB v2.1+ Apple Watch duplicates: begins with atc/ and includes watchOS, or contains
    (null)/(null) watchOS (case-insensitive, as the model applies it)."""
    return bool(re.match(r"(?i)atc/", agent) and re.search(r"(?i)watchos", agent)) or \
        bool(re.search(r"(?i)\(null\)/\(null\) watchos", agent))


def test_javascript_word_boundaries_become_postgres_ones():
    assert to_postgres_regex(r"[Bb]ot\b") == r"[Bb]ot\y"
    assert to_postgres_regex(r"\Bx\\b") == r"\Yx\\b"


def test_every_opawg_example_matches_its_own_entry_in_postgres(fresh_db):
    rows = read_patterns(OPAWG)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        counts = store_patterns(conn, rows, "test")
    assert counts["quarantined"] == 0 and counts["apps"] > 400 and counts["bots"] > 200
    expected = {}
    for name in ENTITY_SETS:
        for entry in opawg_entries(name):
            for example in entry.get("examples", []):
                expected.setdefault(example, (name, entry["name"]))
    assert len(expected) > 500
    got = {ua: (s, n) for ua, s, n in query(fresh_db, FIRST_MATCH, (list(expected),))}
    wrong = {ua: (got[ua], want) for ua, want in expected.items() if got[ua] != want}
    assert not wrong, list(wrong.items())[:5]


def test_built_in_patterns_classify_the_simulated_agents(fresh_db):
    """The fallback list still gives the demo's numbers when OPAWG's files are nowhere."""
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        store_patterns(conn, read_patterns(BUILT_IN_DIR), "test")
    got = {ua: s for ua, s, _ in query(fresh_db, FIRST_MATCH, (list(APPS + BOTS + (WATCH,)),))}
    assert all(got[ua] in ("apps", "browsers") for ua in APPS)
    assert all(got[ua] == "bots" for ua in BOTS)


# --- the dbt model on OPAWG's files ---------------------------------------------------------------


def _agents_to_classify() -> list[str]:
    agents = {ua for name in (*ENTITY_SETS, "devices") for e in opawg_entries(name) for ua in e.get("examples", [])}
    simulated = {*APPS, *BOTS, WATCH, *(s.format(n=n) for s in SHARED_AGENTS for n in (10, 11))}
    return sorted(agents | simulated | set(CUBOT_AGENTS) | {"Mystery Crawler 1.0", "-", "Antenna\nPod/3.4.0"})


@pytest.fixture(scope="module")
def classified(new_warehouse, tmp_path_factory):
    """`intermediate.int_user_agents_classified` built by dbt (with its data tests) from OPAWG's
    files loaded by the asset's code, over every example agent of every OPAWG file, the
    simulator's agents and CUBOT phones."""
    url = new_warehouse("t_ua")
    target = tmp_path_factory.mktemp("ua-dbt")
    with psycopg.connect(url, autocommit=True) as conn:
        counts = store_patterns(conn, read_patterns(OPAWG), "test")
    assert counts["quarantined"] == 0
    first = run_dbt(url, target, "build", "--select", "stg_reference__user_agent_patterns", "stg_listener_logs__events",
                 "int_user_agents_daily",
                 "--exclude", "test_type:unit")
    assert first.returncode == 0, first.stdout[-3000:]
    agents = _agents_to_classify()
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor().copy("copy intermediate.int_user_agents_daily (event_date, user_agent) "
                                "from stdin") as copy:
            for agent in agents:
                copy.write_row(("2026-11-01", agent))
    built = run_dbt(url, target, "build", "--select", "int_user_agents_classified")  # its unit and data tests too
    assert built.returncode == 0, built.stdout[-3000:]
    rows = query(url, "select user_agent, agent_type, agent_name, device_name, device_category "
                      "from intermediate.int_user_agents_classified")
    assert len(rows) == len(agents)
    return {ua: rest for ua, *rest in rows}


def test_the_model_agrees_with_opawgs_first_match_on_every_example(classified):
    opawg = Opawg()
    examples = {name: [ua for e in opawg_entries(name) for ua in e.get("examples", [])]
                for name in (*ENTITY_SETS, "devices")}
    watches = [ua for e in opawg_entries("devices") if e.get("category") == "watch" for ua in e.get("examples", [])]
    assert min(len(v) for v in examples.values()) >= 30 and watches
    disagree = []
    for agent in sorted({ua for uas in examples.values() for ua in uas}):
        kind, entity, device, category = opawg.match(agent)
        if len(agent.strip()) < 3:
            want_type = "malformed"
        elif iab_watch(agent):
            want_type = "watch"  # IAB's Apple Watch rule, whatever OPAWG matched
        else:
            want_type = TYPE_OF_SET.get(kind, "unknown" if kind is None else kind)
            if kind is None and re.search(r"(?i)(?<!cu)bot\b|crawler|spider|scraper", agent):
                want_type = "bot"
        want = [want_type, entity or "Unknown", device or "Unknown", category or "unknown"]
        if classified[agent] != want:
            disagree.append((agent, classified[agent], want))
    assert not disagree, disagree[:5]
    # Each kind reaches the model: OPAWG's examples land in their own file's type.
    types = {name: {classified[ua][0] for ua in examples[name]} for name in ENTITY_SETS}
    assert {"app"} <= types["apps"] and {"bot", "watch"} <= types["bots"]
    assert "library" in types["libraries"] and types["browsers"] == {"browser"}
    # OPAWG's watch device example is Overcast's watch app; devices.json lists the iPhone
    # (CFNetwork) first, so OPAWG, and the model, call it a phone.
    assert {tuple(classified[ua][:4]) for ua in watches} == {("app", "Overcast", "Apple iPhone", "mobile")}


def test_opawg_counts_most_bot_examples_as_bots_and_names_the_apps(classified):
    bot_examples = {ua for e in opawg_entries("bots") for ua in e.get("examples", [])}
    app_examples = {ua: e["name"] for e in opawg_entries("apps") for ua in e.get("examples", [])}
    # An OPAWG bot example counts as a download only when it is IAB-watch (excluded anyway).
    counted = [ua for ua in bot_examples if classified[ua][0] not in ("bot", "watch", "malformed")]
    assert counted == []
    named = sum(1 for ua, name in app_examples.items() if classified[ua][1] == name)
    assert named == len(app_examples)


def test_cubot_phones_are_not_bots(classified):
    got = {ua: classified[ua][0] for ua in CUBOT_AGENTS}
    assert got == {CUBOT_AGENTS[0]: "browser", CUBOT_AGENTS[1]: "browser", CUBOT_AGENTS[2]: "library",
                   CUBOT_AGENTS[3]: "library", CUBOT_AGENTS[4]: "app", CUBOT_AGENTS[5]: "unknown"}


def test_self_declared_robots_and_newlines_when_no_pattern_matched(classified):
    assert classified["Mystery Crawler 1.0"][:2] == ["bot", "Unknown"]
    assert classified["-"][0] == "malformed"
    # OPAWG removes newlines before matching: the agent is still AntennaPod.
    assert classified["Antenna\nPod/3.4.0"][:2] == ["app", "AntennaPod"]


def test_simulated_agents_classify_as_the_simulator_truth_says(classified):
    """The simulator's truth counts APPS (and its households' SHARED_AGENTS) as listeners, BOTS as
    bots and WATCH as an Apple Watch duplicate: under OPAWG's patterns the model agrees."""
    listeners = [*APPS, *(s.format(n=n) for s in SHARED_AGENTS for n in (10, 11))]
    assert {classified[ua][0] for ua in listeners} <= {"app", "library", "browser"}
    assert all(classified[ua][1] != "Unknown" for ua in listeners)
    assert {classified[ua][0] for ua in BOTS} == {"bot"}
    assert classified[WATCH][0] == "watch"


# --- the stored copy and the warning --------------------------------------------------------------

def _flat_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "opawg"
    shutil.copytree(OPAWG, folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_update_stores_a_version_once_and_refuses_an_invalid_file(tmp_path):
    store = tmp_path / "store"
    manifest, changed = update_patterns(str(OPAWG), store)
    assert changed and manifest["files"]["bots.json"]["entries"] == len(opawg_entries("bots"))
    assert len(manifest["files"]) == 7 and (store / "current" / "patterns.schema.json").exists()
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    assert update_patterns(str(OPAWG), store) == (manifest, False)
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before

    source = _flat_copy(tmp_path)
    bots = next(source.glob("*__bots.json"))
    document = json.loads(bots.read_text())
    document["entries"][3]["pattern"] = 42  # OPAWG's schema: a pattern is a string
    bots.write_text(json.dumps(document))
    with pytest.raises(PatternUpdateError, match=r"^bots\.json: entries\[3\]\.pattern: 42 is not of type 'string'$"):
        update_patterns(str(source), store)
    del document["entries"][3]["pattern"]
    bots.write_text(json.dumps(document))
    with pytest.raises(PatternUpdateError, match=r"entries\[3\]: 'pattern' is a required property"):
        update_patterns(str(source), store)
    bots.write_text('{"entries": []}')  # valid against OPAWG's schema, useless to the loader
    with pytest.raises(PatternUpdateError, match=r"^bots\.json: entries: \[\] should be non-empty"):
        update_patterns(str(source), store)
    bots.write_text("<html>rate limited</html>")
    with pytest.raises(PatternUpdateError, match=r"^bots\.json: not JSON"):
        update_patterns(str(source), store)
    bots.unlink()
    with pytest.raises(PatternUpdateError, match=r"has no bots\.json$"):
        update_patterns(str(source), store)
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    assert stored_version(store) == manifest

    bots.write_text(json.dumps({"entries": [{"name": "Only bot", "pattern": "^OnlyBot/"}]}))
    newer, changed = update_patterns(str(source), store)
    assert changed and newer["id"] != manifest["id"] and stored_version(store) == newer
    assert {p.name for p in (store / "versions").iterdir()} == {manifest["id"], newer["id"]}


def test_the_loader_prefers_a_configured_folder_then_the_stored_copy_then_the_built_in_list(tmp_path, monkeypatch):
    monkeypatch.delenv("PODCAST_USER_AGENT_PATTERNS_DIR", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert pattern_source(settings).folder == BUILT_IN_DIR and pattern_source(settings).built_in
    manifest, _ = update_patterns(str(OPAWG), settings.resolved_user_agent_store_dir())
    stored = pattern_source(settings)
    assert (stored.origin, stored.version["id"]) == ("stored", manifest["id"])
    assert len(read_patterns(stored.folder)) == len(read_patterns(OPAWG))
    configured = pattern_source(Settings(data_dir=tmp_path, user_agent_patterns_dir=OPAWG))
    assert (configured.origin, configured.folder) == ("configured", OPAWG)
    assert pattern_source(Settings(data_dir=tmp_path, user_agent_patterns_dir=BUILT_IN_DIR)).built_in


def _materialize(url: str) -> dg.ExecuteInProcessResult:
    return dg.materialize([user_agent_patterns], resources={"warehouse": WarehouseResource(database_url=url)})


def test_a_warn_check_says_when_the_built_in_list_is_in_use(fresh_db, tmp_path, monkeypatch):
    monkeypatch.delenv("PODCAST_USER_AGENT_PATTERNS_DIR", raising=False)
    monkeypatch.setenv("PODCAST_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        built_in = _materialize(fresh_db)
        [check] = built_in.get_asset_check_evaluations()
        assert (check.check_name, check.passed, check.severity) == (SOURCE_CHECK, False, dg.AssetCheckSeverity.WARN)
        assert "built-in list" in check.description and "user-agents update" in check.description
        assert built_in.success  # a warning, not a failure
        assert query(fresh_db, "select count(*) from raw.user_agent_patterns")[0][0] == len(read_patterns(BUILT_IN_DIR))

        manifest, _ = update_patterns(str(OPAWG), tmp_path / "user_agents")
        stored = _materialize(fresh_db)
        [check] = stored.get_asset_check_evaluations()
        assert check.passed and manifest["id"] in check.description
        metadata = stored.asset_materializations_for_node("raw__user_agent_patterns")[0].metadata
        assert metadata["pattern_origin"].value == "stored" and metadata["opawg_version"].value == manifest["id"]
        assert query(fresh_db, "select count(*) from raw.user_agent_patterns")[0][0] == len(read_patterns(OPAWG))
    finally:
        get_settings.cache_clear()
