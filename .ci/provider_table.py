"""The providers-and-frameworks table of one CI run, read from the JUnit XML its tox runs wrote.

Each row is a provider or framework; each column counts the tests of that row that check
one thing, as passed/run: recording against a loopback server serving real traffic,
typing per chunk with the SDK's classes, replay equal to the live run, and no credential
in the written files. A provider's tests are sorted into columns by their names (every
replay test records first); every framework test checks all four, so its columns are the
same count. Usage: ``python .ci/provider_table.py .ci/results/*.xml``.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

ROWS = [
    ("Anthropic Messages", "test_anthropic", None),
    ("Google Gemini / Vertex AI", "test_google", None),
    ("Cohere v2 / v1", "test_cohere", None),
    ("Amazon Bedrock", "test_bedrock", None),
    ("Groq", "test_openai_compatible", "groq"),
    ("Mistral", "test_openai_compatible", "mistral"),
    ("Together", "test_openai_compatible", "together"),
    ("Hugging Face", "test_openai_compatible", "huggingface"),
    ("LangChain", "test_langchain", None),
    ("pydantic-ai", "test_pydantic_ai", None),
    ("OpenAI Agents SDK", "test_openai_agents", None),
    ("LiteLLM", "test_litellm", None),
    ("instructor", "test_instructor", None),
]
FRAMEWORKS = {"test_langchain", "test_pydantic_ai", "test_openai_agents", "test_litellm", "test_instructor"}
COLUMNS = {
    "recorded": re.compile(r"record|replay|replays"),
    # The replays through an SDK check the stored types too.
    "typed per chunk": re.compile(r"typed|type|through"),
    "replay equal": re.compile(r"replay|replays|equal|same"),
    "leaks (none found)": re.compile(r"credential|leak|no_key|key_"),
}


def main(paths: list[str]) -> int:
    # (module, test name) -> passed?
    results: dict[tuple[str, str], bool] = {}
    for path in paths:
        for case in ET.parse(path).getroot().iter("testcase"):
            if case.find("skipped") is not None:
                continue
            module = case.get("classname", "").rsplit(".", 1)[-1]
            ok = case.find("failure") is None and case.find("error") is None
            results[(module, case.get("name", ""))] = ok
    print("| provider or framework | tests | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for label, module, sdk in ROWS:
        cases = {
            name: ok
            for (mod, name), ok in results.items()
            if mod == module and (sdk is None or sdk in name.lower() or _about(name, sdk))
        }
        if not cases:
            print(f"| {label} | not run | " + " | ".join("-" for _ in COLUMNS) + " |")
            continue
        counts: dict[str, list[bool]] = defaultdict(list)
        for name, ok in cases.items():
            for column, pattern in COLUMNS.items():
                if module in FRAMEWORKS or pattern.search(name):
                    counts[column].append(ok)
        cells = [f"{sum(counts[c])}/{len(counts[c])}" if counts[c] else "-" for c in COLUMNS]
        print(f"| {label} | {sum(cases.values())}/{len(cases)} | " + " | ".join(cells) + " |")
    return 0 if all(results.values()) else 1


def _about(name: str, sdk: str) -> bool:
    # test_openai_compatible's corpus-wide tests are parametrized by corpus folder.
    return sdk in ("groq", "mistral", "huggingface") and f"[{sdk}]" in name


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
