#!/usr/bin/env python3
"""Writes seed inputs for the `config` fuzz target under fuzz/corpus/config/.

Sources: the raw-string TOML snippets in src/config/tests.rs (placeholders such as {SHA_A} and
KEY_A filled in), the inputs of the error snapshots (their `description:` in
src/config/snapshots/*.snap) and every fixtures/policy/**/gitgate.toml. Needs python3 + PyYAML.
"""
import pathlib
import re

import yaml

root = pathlib.Path(__file__).resolve().parent.parent
out = root / "fuzz" / "corpus" / "config"
out.mkdir(parents=True, exist_ok=True)

tests = (root / "src" / "config" / "tests.rs").read_text()
consts = dict(re.findall(r'const (\w+): &str =\s*"([^"]*)";', tests))


def fill(text):
    for name, value in consts.items():
        text = text.replace("{" + name + "}", value).replace(name, value)
    # The one positional `format!` argument in tests.rs is an upper-case SHA_A.
    return text.replace("{}", consts.get("SHA_A", "").upper())


def write(name, text):
    (out / name).write_text(text)


# Named after the test (or const) that holds the snippet, so edits elsewhere keep the names.
names = {}
for m in re.finditer(r'r#"(.*?)"#', tests, re.S):
    owners = re.findall(r"(?:fn|const) (\w+)", tests[: m.start()])
    owner = owners[-1] if owners else "snippet"
    names[owner] = names.get(owner, 0) + 1
    suffix = "" if names[owner] == 1 else f"-{names[owner]}"
    write(f"test-{owner}{suffix}.toml", fill(m.group(1)))

for snap in sorted((root / "src" / "config" / "snapshots").glob("*.snap")):
    header = snap.read_text().split("---")[1]
    description = yaml.safe_load(header).get("description")
    if isinstance(description, str):
        write(f"snapshot-{snap.stem}.toml", description)

for toml in sorted((root / "fixtures" / "policy").glob("**/gitgate.toml")):
    write(f"policy-{toml.parent.name}.toml", toml.read_text())
