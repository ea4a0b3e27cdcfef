"""pydantic validation of a YAML document, with problems reported at the offending key."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from profiles_dagster.errors import ProfilesError, did_you_mean
from profiles_dagster.project.yaml_source import KeyPath, YamlDocument


def validate_document(doc: YamlDocument, model: type[BaseModel], data: Any, base: KeyPath) -> Any:
    if data is None:
        raise doc.error("the file is empty", base)
    if not isinstance(data, dict):
        raise doc.error(f"expected a mapping, found {type(data).__name__}", base)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _located(doc, exc, model, base, data) from None


def _located(
    doc: YamlDocument, exc: ValidationError, model: type[BaseModel], base: KeyPath, data: Any
) -> ProfilesError:
    """The first validation problem, placed at its key, with a 'did you mean' for unknown keys."""
    err = exc.errors()[0]
    loc = _data_loc(data, err["loc"], keep_last=err["type"] == "missing")
    path = (*base, *loc)
    if err["type"] == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        valid = list(_field_names(parent)) if parent else []
        unknown = str(loc[-1])
        hint = did_you_mean(unknown, valid) or (f"valid keys: {', '.join(valid)}" if valid else None)
        return doc.error(f"unknown key '{unknown}'", path, hint=hint)
    if err["type"] == "missing":
        return doc.error("required key is missing", path)
    message = err["msg"].removeprefix("Value error, ")
    return doc.error(message, path)


def _data_loc(data: Any, loc: tuple, keep_last: bool) -> tuple:
    """pydantic's loc without the union members' names it inserts ("FeatureViews", "list[...]", "str"):
    only the parts that index into the document (and a missing key, which cannot)."""
    out: list = []
    node = data
    for i, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        if in_dict or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            node = node[part]
        elif not (keep_last and i == len(loc) - 1):
            continue
        out.append(part)
    return tuple(out)


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Walk field annotations to the model that owns the unknown key (for suggestions)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return None
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
