"""What a dbt model's rows depend on besides its inputs' data: its SQL, the dbt vars it reads
(IAB windows and thresholds, attribution settings...), and the user-agent patterns it classifies
with. A change of any of them makes rows built before it wrong, and an incremental model, which
only adds what is new, would never correct them.

Each model gets a *rules fingerprint*: a hash of its checksum, the values of the vars it reads
(in its SQL and in every macro it calls, transitively; the partition window vars excluded), the
pattern set when it reads the user-agent patterns, and the fingerprints of its parents. A rule
change therefore changes the fingerprint of the model that reads it and of everything built from
it. The static part (without the pattern set, which is data) is the asset's code version, so the
UI shows which models a deploy changed; the whole fingerprint is recorded on each
materialization (`rules_fingerprint`), and:

- an unpartitioned incremental model whose fingerprint differs from its last materialization's is
  rebuilt with `--full-refresh` by its next run (assets/dbt.py);
- the partitions of a partitioned model built under other rules are rebuilt by a backfill, which
  `rules_changed_sensor` (pipelines/schedules.py) requests and `podcast-analytics backfill` runs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

VAR_CALL = re.compile(r"""\bvar\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")
# Not rules: the run's partition window, and how a build runs (memory), which change no row.
NOT_RULES = frozenset({"min_date", "max_date", "tenants", "model_work_mem"})
PATTERNS_SOURCE = ("raw", "user_agent_patterns")
# The pattern set as the classification reads it (ordered as it matches).
PATTERN_SET_QUERY = """
select md5(coalesce(string_agg(concat_ws(chr(31), pattern_set, ordinal, name, pattern, category), chr(30)
                                order by pattern_set, ordinal), ''))
from raw.user_agent_patterns
"""


def project_vars(project_dir: Path) -> dict[str, Any]:
    """The project-wide vars of dbt_project.yml (the defaults every build starts from)."""
    declared = yaml.safe_load((project_dir / "dbt_project.yml").read_text()).get("vars") or {}
    return {name: value for name, value in declared.items() if not isinstance(value, dict)}


def pattern_set_version(conn) -> str:
    """A hash of the user-agent patterns in the warehouse (raw.user_agent_patterns)."""
    return conn.execute(PATTERN_SET_QUERY).fetchone()[0]


class RuleFingerprints:
    """The rules fingerprints of a manifest's models, for the given var values."""

    def __init__(self, manifest: Mapping[str, Any], var_values: Mapping[str, Any], pattern_set: str | None = None):
        self.manifest = manifest
        self.var_values = dict(var_values)
        self.pattern_set = pattern_set

    @functools.cached_property
    def _macro_vars(self) -> dict[str, frozenset[str]]:
        macros = self.manifest.get("macros", {})
        found: dict[str, frozenset[str]] = {}

        def walk(unique_id: str, seen: frozenset[str]) -> frozenset[str]:
            if unique_id in found:
                return found[unique_id]
            macro = macros.get(unique_id)
            if macro is None or unique_id in seen:
                return frozenset()
            names = set(VAR_CALL.findall(macro.get("macro_sql", "")))
            for child in macro.get("depends_on", {}).get("macros", []):
                names |= walk(child, seen | {unique_id})
            found[unique_id] = frozenset(names)
            return found[unique_id]

        for unique_id in macros:
            walk(unique_id, frozenset())
        return found

    def vars_read(self, unique_id: str) -> frozenset[str]:
        """The rule vars a model reads in its SQL and in the macros it calls."""
        node = self.manifest["nodes"][unique_id]
        names = set(VAR_CALL.findall(node.get("raw_code", "")))
        for macro in node.get("depends_on", {}).get("macros", []):
            names |= self._macro_vars.get(macro, frozenset())
        return frozenset(names - NOT_RULES)

    def _reads_patterns(self, unique_id: str) -> bool:
        for parent in self.manifest["nodes"][unique_id].get("depends_on", {}).get("nodes", []):
            source = self.manifest.get("sources", {}).get(parent)
            if source is not None and (source.get("schema"), source.get("name")) == PATTERNS_SOURCE:
                return True
        return False

    def own(self, unique_id: str, with_data: bool = True) -> dict[str, Any]:
        """What the model's own rows depend on besides its parents."""
        node = self.manifest["nodes"][unique_id]
        parts: dict[str, Any] = {
            "checksum": node.get("checksum", {}).get("checksum"),
            "vars": {name: self.var_values.get(name) for name in sorted(self.vars_read(unique_id))},
        }
        if with_data and self._reads_patterns(unique_id):
            parts["user_agent_patterns"] = self.pattern_set
        return parts

    @functools.cache
    def fingerprint(self, unique_id: str, with_data: bool = True) -> str:
        """The model's rules and those of every model it is built from, as one hash."""
        node = self.manifest["nodes"][unique_id]
        parents = sorted(parent for parent in node.get("depends_on", {}).get("nodes", [])
                         if parent in self.manifest["nodes"] and parent.startswith(("model.", "seed.", "snapshot.")))
        payload = {"own": self.own(unique_id, with_data), "parents": [self.fingerprint(p, with_data) for p in parents]}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def code_version(self, unique_id: str) -> str:
        """The static part: SQL and vars, the pattern set left out (data, read at run time)."""
        return self.fingerprint(unique_id, with_data=False)
