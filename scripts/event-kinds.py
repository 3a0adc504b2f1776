#!/usr/bin/env python3
"""Rewrites the event kinds in Sources/KlevrAPI/openapi.yaml and in the console's
Sources/KlevrManager/Console/js/events.js from Sources/KlevrCore/Events.swift.

EventKind in Swift is the source: this script sets the `Event.kind` enum (in declaration order) and the
`kind` query parameters' pattern (kinds and families, longest first so a regex alternation prefers the
longest match). Run it after adding a kind; the contract tests check the document and the code agree.
"""
import pathlib, re, sys

root = pathlib.Path(__file__).resolve().parent.parent
swift = (root / "Sources/KlevrCore/Events.swift").read_text()
body = swift.split("public enum EventKind", 1)[1].split("\n}", 1)[0]
kinds = re.findall(r'case \w+ = "([a-z_.]+)"', body)
if not kinds:
    sys.exit("no kinds found in Events.swift")
families = sorted({k.split(".")[0] for k in kinds})
names = sorted(set(kinds) | set(families), key=lambda s: (-len(s), s))
alternation = "|".join(n.replace(".", "\\\\.") for n in names)
one = f"(({alternation})(\\\\.\\\\*)?)"
pattern = f"^{one}?(,{one}?)*$"

doc_path = root / "Sources/KlevrAPI/openapi.yaml"
doc = doc_path.read_text()
lines, width, current = [], 0, []
for k in kinds:
    current.append(k)
    if sum(len(c) + 2 for c in current) > 110:
        lines.append(", ".join(current)); current = []
if current:
    lines.append(", ".join(current))
enum_text = "enum: [" + ",\n            ".join(lines) + "]"
new_doc, n = re.subn(r"(    Event:\n(?:.*\n)*?        kind:\n          type: string\n          )enum: \[[^\]]*\]",
                     lambda m: m.group(1) + enum_text, doc, count=1)
if n != 1:
    sys.exit("Event.kind enum not found")
new_doc, m = re.subn(r'(- \{ name: kind, in: query, description: "[^"]*", schema: \{ type: string, pattern: )"[^"]*"',
                     lambda g: g.group(1) + '"' + pattern + '"', new_doc)
if m == 0:
    sys.exit("kind query parameters not found")
new_doc, w = re.subn(r'(    EventKindPattern: \{ type: string, description: "[^"]*", pattern: )"[^"]*"',
                     lambda g: g.group(1) + '"^' + one + '$"', new_doc)
if w != 1:
    sys.exit("EventKindPattern not found")
doc_path.write_text(new_doc)

js_path = root / "Sources/KlevrManager/Console/js/events.js"
js = js_path.read_text()
rows = ["  " + ", ".join(f"'{k}'" for k in kinds[i:i + 6]) + "," for i in range(0, len(kinds), 6)]
new_js, j = re.subn(r"export const kinds = \[\n(?:.*\n)*?\];", lambda g: "export const kinds = [\n" + "\n".join(rows) + "\n];", js, count=1)
if j != 1:
    sys.exit("the kinds list of events.js not found")
js_path.write_text(new_js)
print(f"{len(kinds)} kinds, {m} kind parameters, events.js")
