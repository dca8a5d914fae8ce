"""A small `helm` command line over real Helm v4 (PyPI helm-python-sdk: Helm's Go SDK as a C library).

It takes the helm CLI's arguments for what the tests and the seed use, so a test runs the seed's commands as
they are written, with the chart path instead of the repository name:

    helm.py show values CHART
    helm.py lint CHART [-f FILE]... [--set K=V]...
    helm.py template CHART [NAME] [--namespace NS] [-f FILE]... [--set K=V]...   # multi-document YAML
    helm.py install CHART (NAME | --generate-name) --namespace NS [-f FILE]... [--set K=V]...
    helm.py upgrade NAME CHART --namespace NS [-f FILE]... [--set K=V]...
    helm.py uninstall NAME --namespace NS
    helm.py list --namespace NS                                                    # JSON

Cluster commands use $KUBECONFIG. --generate-name names the release as the helm CLI does: <chart>-<unix seconds>.
Errors go to stderr with exit status 1, as the helm CLI's do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any


import helm_python as helm


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of values sources: maps merge key by key, anything else is replaced."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def load_values(files: list[str], sets: list[str], set_strings: list[str]) -> dict[str, Any]:
    """-f files in order, then --set and --set-string in order (later wins), as the helm CLI does."""
    values: dict[str, Any] = {}
    for f in files:
        with open(f, encoding="utf-8") as fh:
            merge(values, helm.values_from_yaml(fh.read()))
    for s in sets:
        merge(values, helm.parse_set_string(s))
    for s in set_strings:
        merge(values, helm.parse_set_string_values(s))
    return values


def config(namespace: str) -> helm.Config:
    return helm.Config(kubeconfig_path=os.environ.get("KUBECONFIG"), namespace=namespace)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="helm.py")
    sub = p.add_subparsers(dest="cmd", required=True)

    def values_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-f", "--values", action="append", default=[])
        sp.add_argument("--set", action="append", default=[])
        sp.add_argument("--set-string", action="append", default=[])
        sp.add_argument("-n", "--namespace", default="default")

    show = sub.add_parser("show")
    show.add_argument("what", choices=["values", "chart", "readme"])
    show.add_argument("chart")

    lint = sub.add_parser("lint")
    lint.add_argument("chart")
    values_args(lint)

    tpl = sub.add_parser("template")
    tpl.add_argument("chart")
    tpl.add_argument("name", nargs="?", default="release-name")
    values_args(tpl)

    inst = sub.add_parser("install")
    inst.add_argument("chart")
    inst.add_argument("name", nargs="?")
    inst.add_argument("--generate-name", action="store_true")
    values_args(inst)

    up = sub.add_parser("upgrade")
    up.add_argument("name")
    up.add_argument("chart")
    values_args(up)

    un = sub.add_parser("uninstall")
    un.add_argument("name")
    un.add_argument("-n", "--namespace", default="default")

    ls = sub.add_parser("list")
    ls.add_argument("-n", "--namespace", default="default")

    a = p.parse_args(argv)
    try:
        if a.cmd == "show":
            print(helm.show(a.chart, output_format=a.what), end="")
        elif a.cmd == "lint":
            report = helm.lint(a.chart, load_values(a.values, a.set, a.set_string), namespace=a.namespace)
            print(json.dumps(report))
            return 1 if report.get("errors") else 0
        elif a.cmd == "template":
            values = load_values(a.values, a.set, a.set_string)
            with helm.Chart.load(a.chart) as chart:
                chart.validate_schema(chart.merge_values(values))
                rendered = chart.render(values, name=a.name, namespace=a.namespace, is_install=True)
            for path in sorted(rendered):
                text = rendered[path].strip()
                if path.endswith("NOTES.txt") or not text:
                    continue
                print(f"---\n# Source: {path}\n{text}")
        elif a.cmd == "install":
            if a.generate_name == bool(a.name):
                raise SystemExit("helm.py install: give a release NAME or --generate-name, not both")
            name = a.name or f"{helm.Chart.load(a.chart).name}-{int(time.time())}"
            values = load_values(a.values, a.set, a.set_string)
            with config(a.namespace) as cfg:
                release = cfg.install(a.chart, name, values, namespace=a.namespace, timeout=120)
            print(json.dumps(release))
        elif a.cmd == "upgrade":
            values = load_values(a.values, a.set, a.set_string)
            with config(a.namespace) as cfg:
                release = cfg.upgrade(a.chart, a.name, values, namespace=a.namespace, timeout=120)
            print(json.dumps(release))
        elif a.cmd == "uninstall":
            with config(a.namespace) as cfg:
                print(json.dumps(cfg.uninstall(a.name, timeout=120)))
        elif a.cmd == "list":
            with config(a.namespace) as cfg:
                print(json.dumps(cfg.list(all_states=True)))
    except helm.HelmError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
