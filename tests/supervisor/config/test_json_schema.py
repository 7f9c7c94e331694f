"""`fleet schema`: a JSON Schema that editors can use, and that agrees with the loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from supervisor.config.document import parse_document
from supervisor.config.duration import parse_duration
from supervisor.config.render import fleet_json_schema

EXAMPLE = Path(__file__).parents[3] / "fleet.yaml"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = fleet_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_is_json() -> None:
    schema = fleet_json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["fleet"]
    node = schema["$defs"]["NodeSpec"]
    assert node["required"] == ["name", "trader_id"]
    assert node["additionalProperties"] is False
    assert node["properties"]["watchdog"]["anyOf"] == [{"$ref": "#/$defs/WatchdogSpec"}, {"type": "null"}]


def test_duration_defaults_are_written_as_in_the_file() -> None:
    restart = fleet_json_schema()["$defs"]["RestartSpec"]["properties"]
    assert restart["backoff_initial"]["default"] == "500ms"
    assert restart["start_limit"]["default"] == {"burst": 5, "window": "1m"}
    for prop in restart.values():
        if "default" in prop and isinstance(prop["default"], str):
            parse_duration(prop["default"])


def test_example_fleet_validates(validator: jsonschema.Draft202012Validator) -> None:
    data = parse_document(EXAMPLE.read_text(), str(EXAMPLE)).data
    assert list(validator.iter_errors(data)) == []


@pytest.mark.parametrize(
    "data",
    [
        {"fleet": "demo", "colour": "x"},
        {"fleet": "Demo"},
        {"fleet": "demo", "defaults": {"restart": {"backoff_max": "fast"}}},
        {"fleet": "demo", "defaults": {"restart": {"backoff_max": 30}}},
        {"fleet": "demo", "nodes": [{"name": "a"}]},
        {"fleet": "demo", "mqtt": {"port": 0}},
        {"fleet": "demo", "venues": {"emu": {"type": "kraken"}}},
    ],
)
def test_schema_rejects_what_the_loader_rejects(
    validator: jsonschema.Draft202012Validator, data: Any
) -> None:
    assert list(validator.iter_errors(data))
