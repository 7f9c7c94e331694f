"""Read fleet.yaml into plain Python values, remembering where every key and value came from.

PyYAML's own loaders are not used for values because they apply YAML 1.1 rules: `no`/`on` become booleans,
`1:30` the integer 90, `0600` an octal number, `2024-01-01` a date, and a repeated key silently wins. Here the
YAML is only composed into nodes (which carry their marks) and scalars are resolved with a small, strict set
of rules (YAML 1.2 core, minus its surprises): quoted and block scalars are strings, plain ones are resolved
by `scalars.resolve_plain` (`no`, `on`, `1:30`, `0600` stay strings).

Mapping keys are always strings. A key given twice in one mapping is an error. Anchors, aliases and merge keys
(`<<: *base`) work; explicit tags other than the standard `!!str`/`!!map`/`!!seq` are refused.
"""

from __future__ import annotations

from typing import Any

import yaml

from supervisor.config.errors import ConfigError, FieldPath, Location, format_path, quote
from supervisor.config.marks import Document, Marks
from supervisor.config.scalars import ScalarError, resolve_plain

_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
# Given to plain (unquoted) scalars instead of PyYAML's YAML 1.1 guesses; resolved by `resolve_plain`.
_PLAIN = "tag:nautilus-fleet,2025:plain"
_MERGE_KEY = "<<"
# Aliases can make a small file expand enormously ("billion laughs"); a fleet never needs this many values.
MAX_VALUES = 100_000
# Lists and mappings inside each other. A fleet needs about 8 levels (nodes[0].strategies[0].config.<yours>);
# PyYAML composes, and we build, recursively: 50,000 nested "[" exhausted the stack and took the daemon down.
MAX_DEPTH = 64


# LibYAML's parser when PyYAML was built with it (the wheels are): about 10x faster than the pure-Python one.
_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """Composes nodes only; implicit plain scalars get the `_PLAIN` tag instead of YAML 1.1 types."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return str(super().resolve(kind, value, implicit))


def _location(node: yaml.Node) -> Location:
    return Location(node.start_mark.line + 1, node.start_mark.column + 1)


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG_PREFIX) if tag.startswith(_YAML_TAG_PREFIX) else tag


def _syntax_error(source: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "unreadable YAML"
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    if "another document" in problem:
        return ConfigError(
            file=source, line=line, column=column, field="", expected="a single YAML document", found=None
        )
    return ConfigError(
        file=source, line=line, column=column, field="", expected="valid YAML", found=None, hint=problem
    )


def _reader_error(source: str, text: str, exc: yaml.reader.ReaderError) -> ConfigError:
    """A character YAML does not allow (control characters); placed by counting lines up to it."""
    before = text[: exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    return ConfigError(
        file=source,
        line=line,
        column=column,
        field="",
        expected="valid YAML",
        found=None,
        hint=f"character #x{exc.character:04x} is not allowed (control characters cannot appear in YAML)",
    )


def _check_depth(source: str, text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH before anything recursive sees the text. PyYAML's parser is a
    state machine (no recursion), so its event stream is a safe way to measure."""
    loader = _Loader(text)
    depth = 0
    try:
        while (event := loader.get_event()) is not None:
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise ConfigError(
                        file=source,
                        line=mark.line + 1 if mark else 0,
                        column=mark.column + 1 if mark else 0,
                        field="",
                        expected=f"lists and mappings nested at most {MAX_DEPTH} deep",
                        found="deeper nesting",
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.StreamEndEvent):
                break
    finally:
        loader.dispose()


def parse_document(text: str, source: str) -> Document:
    """Compose and resolve one YAML document; ConfigError for syntax errors, repeated keys, tags, nesting
    deeper than MAX_DEPTH, etc."""
    try:
        _check_depth(source, text)
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(source, text, exc) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(source, exc) from None
    try:
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise _reader_error(source, text, exc) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(source, exc) from None
    finally:
        loader.dispose()
    marks = Marks()
    if node is None:
        return Document(source, None, marks)
    builder = _Builder(source, marks)
    data = builder.build(node, ())
    return Document(source, data, marks)


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, recording marks by path."""

    def __init__(self, source: str, marks: Marks) -> None:
        self.source = source
        self.marks = marks
        self.count = 0
        self.active: set[int] = set()  # nodes being built: an alias back into one of them is a cycle

    def fail(
        self, node: yaml.Node, path: FieldPath, expected: str, found: str | None, hint: str | None = None
    ) -> ConfigError:
        loc = _location(node)
        return ConfigError(
            file=self.source,
            line=loc.line,
            column=loc.column,
            field=format_path(path),
            expected=expected,
            found=found,
            hint=hint,
        )

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            raise self.fail(node, path, f"at most {MAX_VALUES} values", "more (aliases expanding too far?)")
        if len(path) > MAX_DEPTH:  # aliases nest what the text does not
            raise self.fail(node, path, f"values nested at most {MAX_DEPTH} deep", "deeper (through aliases)")
        self.marks.values[path] = _location(node)
        if id(node) in self.active:
            raise self.fail(node, path, "a value that does not contain itself", "a recursive alias")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.ScalarNode):
                return self.scalar(node, path)
            if isinstance(node, yaml.SequenceNode):
                self.check_tag(node, path, _SEQ)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                self.check_tag(node, path, _MAP)
                return self.mapping(node, path)
            raise self.fail(node, path, "a YAML value", type(node).__name__)
        finally:
            self.active.discard(id(node))

    def check_tag(self, node: yaml.Node, path: FieldPath, allowed: str) -> None:
        if node.tag not in (allowed, _PLAIN):
            raise self.fail(
                node,
                path,
                "a value without a YAML tag",
                f"tag {_show_tag(node.tag)}",
                "tags are not supported",
            )

    def scalar(self, node: yaml.ScalarNode, path: FieldPath) -> Any:
        if node.tag == _PLAIN:
            try:
                return resolve_plain(node.value)
            except ScalarError as exc:
                raise self.fail(node, path, exc.expected, exc.found) from None
        self.check_tag(node, path, _STR)
        return node.value

    def mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, Location] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            if key == _MERGE_KEY and key_node.tag == _PLAIN:
                merges.append(value_node)
                continue
            if key in seen:
                first = seen[key]
                raise self.fail(
                    key_node,
                    (*path, key),
                    "each key once in a mapping",
                    f"{quote(key)} again",
                    f"first given at line {first.line}, column {first.column}",
                )
            seen[key] = _location(key_node)
            self.marks.keys[(*path, key)] = seen[key]
            out[key] = self.build(value_node, (*path, key))
        for merge in merges:
            self.merge(merge, path, out)
        return out

    def key(self, node: yaml.Node, path: FieldPath) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, path, "a plain key (a string)", "a list or mapping as a key")
        if node.tag not in (_PLAIN, _STR):
            raise self.fail(
                node, path, "a key without a YAML tag", f"tag {_show_tag(node.tag)}", "tags are not supported"
            )
        return str(node.value)

    def merge(self, node: yaml.Node, path: FieldPath, out: dict[str, Any]) -> None:
        """Add the items of `<<: *a` or `<<: [*a, *b]` that `out` does not have yet (explicit keys and earlier
        sources win, as in YAML's merge key convention). Their marks point into the anchored mapping, which is
        where the user has to edit them."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise self.fail(
                    source, (*path, _MERGE_KEY), "a mapping or a list of mappings to merge", "another value"
                )
            outer, self.marks = self.marks, Marks()
            try:
                items = self.build(source, path)
                inner = self.marks
            finally:
                self.marks = outer
            for key, item in items.items():
                if key in out:
                    continue
                out[key] = item
                self.marks.alias_from(inner, (*path, key))
